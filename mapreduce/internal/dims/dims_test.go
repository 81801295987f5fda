package dims

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"shortfleet/mapreduce/internal/dims/dimstest"
)

func newTest(t testing.TB, truncate bool) *Classifier {
	t.Helper()
	db := filepath.Join(t.TempDir(), "geo.mmdb")
	if err := dimstest.WriteGeoDB(db); err != nil {
		t.Fatal(err)
	}
	s, err := NewShared(Config{GeoIPPath: db, Salt: []byte("0123456789abcdef"), TruncateIP: truncate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.NewClassifier()
}

// TestTrim checks that a classifier kept from run to run (the job keeps
// them) drops its caches once the value table is trimmed: its cached ids
// would otherwise name other values, or none.
func TestTrim(t *testing.T) {
	c := newTest(t, false)
	s := c.s
	s.limit = 3
	const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	c.UserAgentIDs(ua)
	c.ReferrerHostID("https://a.example/x")
	before := len(s.Names())
	s.Trim()
	if n := len(s.Names()); n != 0 || before <= 3 {
		t.Fatalf("trim left %d of %d names", n, before)
	}
	c.Check()
	// New values first, so the old ids would now name these.
	if got := c.ReferrerHost("https://b.example/"); got != "b.example" {
		t.Fatalf("referrer after trim: %q", got)
	}
	if got := c.ReferrerHost("https://a.example/x"); got != "a.example" {
		t.Fatalf("cached referrer after trim: %q", got)
	}
	if got := c.UserAgent(ua); got != (UA{"Firefox", "Linux", DeviceDesktop, false}) {
		t.Fatalf("cached user agent after trim: %+v", got)
	}
	// Under the bound, Trim keeps the table and the caches stay valid.
	s.limit = maxNames
	n := len(s.Names())
	s.Trim()
	c.Check()
	if len(s.Names()) != n || c.ReferrerHost("https://a.example/x") != "a.example" {
		t.Fatalf("trim under the bound changed the table: %d names, was %d", len(s.Names()), n)
	}
}

func TestUserAgent(t *testing.T) {
	c := newTest(t, false)
	for _, tc := range []struct {
		ua   string
		want UA
	}{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", UA{"Chrome", "Windows", DeviceDesktop, false}},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", UA{"Mobile Safari", "iOS", DeviceMobile, false}},
		{"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", UA{"Mobile Safari", "iOS", DeviceTablet, false}},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", UA{"Chrome Mobile", "Android", DeviceMobile, false}},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", UA{"Firefox", "Linux", DeviceDesktop, false}},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", UA{"Googlebot", "Other", DeviceBot, true}},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", UA{"bingbot", "Other", DeviceBot, true}},
		{"", UA{"(none)", "(none)", DeviceBot, true}},
	} {
		got := c.UserAgent(tc.ua)
		if got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.ua, got, tc.want)
		}
		if again := c.UserAgent(tc.ua); again != got {
			t.Errorf("%q: cached answer %+v differs", tc.ua, again)
		}
	}
}

func TestReferrerHost(t *testing.T) {
	c := newTest(t, false)
	for in, want := range map[string]string{
		"":                                  "(direct)",
		"https://News.Example.com/a?b=c":    "news.example.com",
		"http://user:pw@host.example:8080/": "host.example",
		"https://[2001:db8::1]:443/x":       "[2001:db8::1]",
		"android-app://com.slack/":          "com.slack",
		"//cdn.example/x":                   "cdn.example",
		"not a url":                         BadReferrer,
		"::":                                BadReferrer,
		"https://[::1/":                     BadReferrer,
		"https://bücher.example/":           "bücher.example",
		"https://example.com./":             "example.com",
	} {
		if got := c.ReferrerHost(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestLanguage(t *testing.T) {
	c := newTest(t, false)
	for in, want := range map[string]string{
		"de-CH,de;q=0.9,en;q=0.8": "de",
		"en-US,en;q=0.9":          "en",
		"fr;q=0.5, ja":            "ja",
		"":                        "(none)",
		"*":                       "(none)",
		"%%garbage%%":             "(none)",
	} {
		if got := c.Language(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// TestCountry reads both record layouts: MaxMind's
// (country.iso_code) and ip-location-db's (country_code), the default
// database's.
func TestCountry(t *testing.T) {
	for _, layout := range []struct {
		name  string
		write func(string) error
	}{{"maxmind", dimstest.WriteGeoDB}, {"ip-location-db", dimstest.WriteFlatGeoDB}} {
		t.Run(layout.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "geo.mmdb")
			if err := layout.write(db); err != nil {
				t.Fatal(err)
			}
			s, err := NewShared(Config{GeoIPPath: db, Salt: []byte("0123456789abcdef")})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			c := s.NewClassifier()
			for in, want := range map[string]string{
				"192.0.2.77":       "CH",
				"198.51.100.1":     "JP",
				"203.0.113.200":    "BR",
				"2001:db8::42":     "DE",
				"::ffff:192.0.2.1": "CH",
				"10.0.0.1":         "--",
				"not an address":   "--",
			} {
				if got := c.Country(in); got != want {
					t.Errorf("%q: got %q, want %q", in, got, want)
				}
			}
		})
	}
}

// TestCountryCache: the cache by network tells families apart (an IPv6
// network whose bits match an IPv4 /24's), answers for a whole /24 (/48),
// and agrees with a fresh lookup whatever the order of the questions.
func TestCountryCache(t *testing.T) {
	c := newTest(t, false)
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.77", "CH"},
		{"0:c0:2::1", "--"}, // the bits of 192.0.2.0/24 as an IPv6 /48
		{"192.0.2.200", "CH"},
		{"::ffff:192.0.2.9", "CH"},
		{"2001:db8::42", "DE"},
		{"2001:db8:0:ffff::1", "DE"},
		{"10.0.0.1", "--"},
		{"198.51.100.1", "JP"},
		{"192.0.2.1", "CH"},
	} {
		if got := c.Country(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVisitor(t *testing.T) {
	c := newTest(t, false)
	a := c.Visitor("192.0.2.1", "UA")
	if a != c.Visitor("192.0.2.1", "UA") {
		t.Fatal("visitor hash not stable")
	}
	if a == c.Visitor("192.0.2.2", "UA") || a == c.Visitor("192.0.2.1", "UB") {
		t.Fatal("different visitors hash alike")
	}
	tr := newTest(t, true)
	if tr.Visitor("192.0.2.1", "UA") != tr.Visitor("192.0.2.200", "UA") {
		t.Fatal("with truncation, one /24 should be one visitor per user agent")
	}
	if tr.Visitor("2001:db8:1:2::1", "UA") != tr.Visitor("2001:db8:1:ffff::9", "UA") {
		t.Fatal("with truncation, one /48 should be one visitor")
	}
	other, _ := NewShared(Config{Salt: []byte("another salt 0123456")})
	if other.NewClassifier().Visitor("192.0.2.1", "UA") == a {
		t.Fatal("the salt does not change the hash")
	}
}

func BenchmarkClassifyCached(b *testing.B) {
	c := newTest(b, false)
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	for b.Loop() {
		c.UserAgent(ua)
		c.ReferrerHost("https://news.ycombinator.com/")
		c.Language("de-CH,de;q=0.9")
		c.Country("192.0.2.7")
		c.Visitor("192.0.2.7", ua)
	}
}

// TestCountryBy16: the cache by /16 answers for the /16s a database
// network of a /16 or more covers, and only for those: every address,
// asked in an order where its /16's neighbours come first, gets the
// database's country (dimstest.Networks), and an address in a /16 that
// holds a test network of a /24 is never answered for by another of it.
func TestCountryBy16(t *testing.T) {
	c := newTest(t, false)
	nets := map[netip.Prefix]string{}
	for n, cc := range dimstest.Networks {
		nets[netip.MustParsePrefix(n)] = cc
	}
	truth := func(a netip.Addr) string {
		for n, cc := range nets {
			if n.Contains(a) {
				return cc
			}
		}
		return UnknownCountry
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var addrs []netip.Addr
	for range 20_000 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}))
	}
	// The /16s of the test networks, neighbours first.
	for _, n := range []string{"192.0.3.1", "192.0.2.77", "192.0.1.1", "198.51.99.1", "198.51.100.1", "203.0.112.1", "203.0.113.1", "203.0.113.255", "203.0.114.1"} {
		addrs = append(addrs, netip.MustParseAddr(n))
	}
	for _, a := range addrs {
		if got, want := c.Country(a.String()), truth(a); got != want {
			t.Fatalf("%s: got %q, want %q", a, got, want)
		}
	}
	// Every /16 asked is answered from the cache by /16 from then on,
	// but those that hold a test network of a /24.
	holds := map[uint16]bool{192<<8 | 0: true, 198<<8 | 51: true, 203<<8 | 0: true}
	for _, a := range addrs {
		b := a.As4()
		n := uint16(b[0])<<8 | uint16(b[1])
		if cached := c.geo16[n] != 0; cached == holds[n] {
			t.Fatalf("/16 %d.%d: cached %v, holds a test network %v", b[0], b[1], cached, holds[n])
		}
	}
}

// TestValuesOwnTheirBytes: the strings a classifier is given may alias a
// decoder's buffer (Arrow's String.Value does), which is recycled for the
// next batch. A value the table keeps must not change when that buffer is
// overwritten.
func TestValuesOwnTheirBytes(t *testing.T) {
	c := newTest(t, false)
	for _, tc := range []struct {
		name, in, overwrite, want string
		id                        func(string) ID
	}{
		{"referrer host", "https://news.example/a", "https://xxxx.xxxxxxx/a", "news.example", c.ReferrerHostID},
		{"table", "some-value", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "some-value", c.s.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := []byte(tc.in)
			id := tc.id(unsafe.String(&buf[0], len(buf)))
			copy(buf, tc.overwrite)
			if got := c.Name(id); got != tc.want {
				t.Fatalf("value %q became %q when the buffer it came from was reused", tc.want, got)
			}
			if again := c.s.ID(tc.want); again != id {
				t.Fatalf("%q looked up again has id %d, want %d", tc.want, again, id)
			}
		})
	}
}

// FuzzClassify feeds every field the job classifies from a log record (the
// user agent, referrer, Accept-Language and client address are what
// strangers sent) through the classifier: nothing panics, and each answer
// keeps its shape: a referrer host is lower case, without a path, port or
// user, and at most 253 bytes, or Direct or BadReferrer; a language is a bare primary
// subtag or NoLanguage; a device is one of the five; a country is a
// two-letter code or "--"; the same visitor hashes the same twice.
func FuzzClassify(f *testing.F) {
	f.Add("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148", "https://User@News.Example.:8443/a?b#c", "de-CH,de;q=0.9", "81.2.69.142")
	f.Add("Googlebot/2.1", "//[2001:db8::1]:80/x", "*;q=0.1", "2001:db8::1")
	f.Add("", "", "", "")
	f.Add("\xff\xfe", "http://\x00@/", "en-US;q=abc,,;", "300.1.1.1")
	c := newTest(f, false)
	devices := map[string]bool{DeviceDesktop: true, DeviceMobile: true, DeviceTablet: true, DeviceBot: true, DeviceOther: true}
	f.Fuzz(func(t *testing.T, ua, ref, lang, addr string) {
		u := c.UserAgent(ua)
		if !devices[u.Device] || u.Browser == "" || u.OS == "" {
			t.Fatalf("user agent %q: %+v", ua, u)
		}
		if u.Device == DeviceBot != u.Bot {
			t.Fatalf("user agent %q: device %s but bot %v", ua, u.Device, u.Bot)
		}
		if h := c.ReferrerHost(ref); h != Direct && h != BadReferrer {
			if h != strings.ToLower(h) || strings.ContainsAny(h, "/?#@ \x00") || len(h) > 253 || !utf8.ValidString(h) ||
				(!strings.HasPrefix(h, "[") && strings.Contains(h, ":")) {
				t.Fatalf("referrer %q: host %q", ref, h)
			}
		}
		if l := c.Language(lang); l != NoLanguage {
			if len(l) < 2 || len(l) > 8 || strings.ContainsAny(l, "-_;,= ") {
				t.Fatalf("Accept-Language %q: language %q", lang, l)
			}
		}
		if cc := c.Country(addr); cc != UnknownCountry && len(cc) != 2 {
			t.Fatalf("address %q: country %q", addr, cc)
		}
		if c.Visitor(addr, ua) != c.Visitor(addr, ua) {
			t.Fatalf("visitor of %q, %q hashes differently twice", addr, ua)
		}
	})
}

// TestParseAddr: parseAddr gives what netip.ParseAddr gives, address and
// error alike, for IPv4 in dotted decimal (its fast path), malformed
// IPv4 of every kind the fast path must hand on, and IPv6.
func TestParseAddr(t *testing.T) {
	cases := []string{"", "1.2.3.4", "0.0.0.0", "255.255.255.255", "10.0.0.1", "192.168.100.200",
		"256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.04", "1.2.3.00", "1.2.3", "1.2.3.4.5", "1..2.3",
		".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4", "1.2.3.1000", "1.2.3.4a", "1.2.3.-4", "9999.1.1.1",
		"::1", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4%x", "a.b.c.d"}
	for i := range 3000 {
		// Every octet's spellings at every position.
		o := []string{"0", "7", "99", "100", "255", "256", "300", "007"}
		cases = append(cases, fmt.Sprintf("%s.%s.%s.%s", o[i%8], o[i/8%8], o[i/64%8], o[i/512%8]))
	}
	for _, s := range cases {
		got, gerr := parseAddr(s)
		want, werr := netip.ParseAddr(s)
		if got != want || (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
			t.Errorf("parseAddr(%q) = %v, %v; netip.ParseAddr %v, %v", s, got, gerr, want, werr)
		}
	}
}

// FuzzParseAddr holds parseAddr, which reads the client address a proxy
// logged (what a stranger's connection came from, or its forwarded
// header), to netip.ParseAddr's answer and error on any string.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "255.255.255.255", "01.2.3.4", "1.2.3.256", "1..2.3", "::ffff:1.2.3.4", "1.2.3.4%x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gerr := parseAddr(s)
		want, werr := netip.ParseAddr(s)
		if got != want || (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
			t.Fatalf("parseAddr(%q) = %v, %v; netip.ParseAddr %v, %v", s, got, gerr, want, werr)
		}
	})
}
