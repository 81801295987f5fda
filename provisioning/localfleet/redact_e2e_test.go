package localfleet_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"shortfleet/logfmt"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/pgcluster"
)

// TestCredentialsRedacted sends real requests carrying credentials
// (Authorization, Cookie, Proxy-Authorization, and X-Api-Key, which the
// proxy is told to redact in lower case) to a proxy of the fleet, then
// reads the sealed segments on its disk and the Parquet archive that
// `mapreduce -once -archive` writes of them: no secret is in either, and
// each of those headers is there under its name with the mark.
func TestCredentialsRedacted(t *testing.T) {
	t.Parallel() // functional, not timed: three at a time (make test -parallel 3), after the timed drills, to keep make test under 20 minutes
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := startFleetWith(t, localfleet.Config{Proxies: 1, NoBalancer: true,
		ProxyArgs: []string{"-flush-interval", "20ms", "-seal-age", "500ms", "-redact-headers", "x-api-key"}})
	_, links := signupWithLinks(t, f.PrimaryURL(), "redact@example.com", 1, "https://example.com/r%d")
	if err := f.WaitReplicas(ctx); err != nil {
		t.Fatal(err)
	}

	// Each secret is unique to this run, so a match cannot come from
	// anywhere else.
	secret := func(what string) string { return "zz-" + what + "-" + pgcluster.RandomSecret(12) }
	secrets := map[string]string{ // header -> its secret
		"Authorization":       secret("auth"),
		"Cookie":              secret("cookie"),
		"Proxy-Authorization": secret("proxyauth"),
		"X-Api-Key":           secret("apikey"),
	}
	sent := map[string]string{ // header -> the value sent
		"Authorization":       "Bearer " + secrets["Authorization"],
		"Cookie":              "session=" + secrets["Cookie"],
		"Proxy-Authorization": "Basic " + secrets["Proxy-Authorization"],
		"X-Api-Key":           secrets["X-Api-Key"],
	}
	redacted := slices.Sorted(func(yield func(string) bool) {
		for h := range secrets {
			if !yield(h) {
				return
			}
		}
	})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	paths := []string{"/" + links[0].Code, "/" + links[0].Code + "?utm_source=mail", "/no-such-link"}
	for i, path := range paths {
		req, _ := http.NewRequest("GET", f.RedirectURLs()[0]+path, nil)
		for h, v := range sent {
			if i == 1 {
				h = strings.ToLower(h) // sent as written: names are matched without regard to case
			}
			req.Header[h] = []string{v}
		}
		req.Header.Set("X-Trace", "visible")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want := map[bool]int{true: 302, false: 404}[i < 2]; resp.StatusCode != want {
			t.Fatalf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	// The 500ms seal age seals them while the proxy runs, for mapreduce
	// to pull.
	waitUntil(t, ctx, func() bool {
		entries, err := logfmt.ReadManifest(f.ProxyLogDir(0))
		var rows int64
		for _, e := range entries {
			rows += e.Rows
		}
		return err == nil && rows == int64(len(paths))
	})

	// check reports what it finds and returns, so that both the segments
	// and the archive are checked.
	check := func(where string, texts []string, headers [][][2]string) {
		t.Helper()
		if len(headers) != len(paths) {
			t.Errorf("%s: %d records, want %d", where, len(headers), len(paths))
			return
		}
		for _, s := range texts {
			for h, v := range secrets {
				if strings.Contains(s, v) {
					t.Errorf("%s: a value holds the %s secret (%d bytes: %.160q)", where, h, len(s), s)
					return
				}
			}
		}
		for i, hs := range headers {
			var marked []string
			traced := false
			for _, h := range hs {
				switch {
				case h[1] == logfmt.Redacted:
					marked = append(marked, h[0])
				case h[0] == "X-Trace" && h[1] == "visible":
					traced = true
				}
			}
			slices.Sort(marked)
			if !slices.Equal(marked, redacted) || !traced {
				t.Errorf("%s: record %d has headers %q; want %v marked %q and X-Trace kept", where, i, hs, redacted, logfmt.Redacted)
			}
		}
	}

	// The sealed segments on the proxy's disk, as the admin API serves them.
	entries, err := logfmt.ReadManifest(f.ProxyLogDir(0))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	var headers [][][2]string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(f.ProxyLogDir(0), e.Name))
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(data)) // compressed, but a stored value may sit in the clear
		rows, err := logfmt.ReadAll(strings.NewReader(string(data)))
		if err != nil {
			t.Fatalf("read %s: %v", e.Name, err)
		}
		for _, r := range rows {
			texts = append(texts, r.ClientAddr, r.Method, r.Host, r.Path, r.Query, r.Proto, r.Cache, r.UserAgent, r.Referrer, r.AcceptLanguage)
			for _, h := range r.Headers {
				texts = append(texts, h[0], h[1])
			}
			headers = append(headers, r.Headers)
		}
	}
	check("the sealed segments", texts, headers)

	// The Parquet archive mapreduce writes of them, read with parquet-go,
	// value by value, whatever column it is in.
	archive := t.TempDir()
	out, err := f.Command(ctx, "mapreduce", "-once", "-proxies", strings.Join(f.AdminURLs(), ","), "-archive", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("mapreduce -once: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(archive, "day=*", "*.parquet"))
	if len(files) == 0 {
		t.Fatalf("mapreduce wrote no archive:\n%s", out)
	}
	texts, headers = nil, nil
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(data))
		values, hs := readArchive(t, path, data)
		texts = append(texts, values...)
		headers = append(headers, hs...)
	}
	check("the Parquet archive", texts, headers)
}

// readArchive returns every string value of an archive file, and each
// row's headers (name and value zipped from the headers column's two
// leaves, in order).
func readArchive(t *testing.T, path string, data []byte) (values []string, headers [][][2]string) {
	t.Helper()
	pf, err := parquet.OpenFile(strings.NewReader(string(data)), int64(len(data)))
	if err != nil {
		t.Fatalf("parquet-go cannot open %s: %v", path, err)
	}
	cols := pf.Schema().Columns()
	leaf := func(name string) int {
		for i, c := range cols {
			if c[0] == "headers" && c[len(c)-1] == name {
				return i
			}
		}
		t.Fatalf("%s: no headers.%s column in %v", path, name, cols)
		return -1
	}
	nameCol, valueCol := leaf("name"), leaf("value")
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 16)
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				var names, vals []string
				for _, v := range row {
					if v.IsNull() || v.Kind() != parquet.ByteArray {
						continue
					}
					s := string(v.ByteArray())
					values = append(values, s)
					switch v.Column() {
					case nameCol:
						names = append(names, s)
					case valueCol:
						vals = append(vals, s)
					}
				}
				if len(names) != len(vals) {
					t.Fatalf("%s: a row has %d header names and %d values", path, len(names), len(vals))
				}
				hs := make([][2]string, len(names))
				for i := range names {
					hs[i] = [2]string{names[i], vals[i]}
				}
				headers = append(headers, hs)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		rows.Close()
	}
	return values, headers
}
