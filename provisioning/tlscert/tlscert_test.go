package tlscert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.pem")
	if err := ca.Issue(good, []string{"s.example.com", "127.0.0.4"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.pem")
	if err := ca.Issue(other, []string{"s.example.com"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	// A file whose key is not its certificate's: good's chain, other's key.
	g, _ := os.ReadFile(good)
	o, _ := os.ReadFile(other)
	mixed := filepath.Join(dir, "mixed.pem")
	os.WriteFile(mixed, append(g[:bytes.Index(g, []byte("-----BEGIN PRIVATE KEY"))], o[bytes.Index(o, []byte("-----BEGIN PRIVATE KEY")):]...), 0o600)
	noKey := filepath.Join(dir, "nokey.pem")
	os.WriteFile(noKey, g[:bytes.Index(g, []byte("-----BEGIN PRIVATE KEY"))], 0o600)

	now := time.Now()
	for _, c := range []struct {
		name  string
		path  string
		hosts []string
		at    time.Time
		want  string // "" for no error
	}{
		{"good", good, []string{"s.example.com", "127.0.0.4"}, now, ""},
		{"expired", good, []string{"s.example.com"}, now.Add(48 * time.Hour), "expired on"},
		{"not yet valid", good, []string{"s.example.com"}, now.Add(-48 * time.Hour), "not valid before"},
		{"wrong name", good, []string{"app.example.com"}, now, "does not cover app.example.com"},
		{"wrong address", good, []string{"127.0.0.5"}, now, "does not cover 127.0.0.5"},
		{"key of another certificate", mixed, nil, now, "private key does not match public key"},
		{"no key", noKey, nil, now, `type ending in "PRIVATE KEY"`},
		{"missing file", filepath.Join(dir, "absent.pem"), nil, now, "no such file"},
	} {
		err := Check(c.path, c.hosts, c.at)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
}

func TestEnsureReissues(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "balancer.pem")
	for _, c := range []struct {
		hosts []string
		want  bool
	}{{[]string{"127.0.0.4"}, true}, {[]string{"127.0.0.4"}, false}, {[]string{"127.0.0.4", "127.0.0.5"}, true}} {
		issued, err := ca.Ensure(p, c.hosts)
		if err != nil || issued != c.want {
			t.Fatalf("Ensure(%v) = %v, %v; want %v", c.hosts, issued, err, c.want)
		}
	}
	// A certificate from another CA is replaced, as is one about to end.
	other, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Issue(p, []string{"127.0.0.4"}, 365*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if issued, err := ca.Ensure(p, []string{"127.0.0.4"}); err != nil || !issued {
		t.Fatalf("a certificate of another CA kept: %v, %v", issued, err)
	}
	if err := ca.Issue(p, []string{"127.0.0.4"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if issued, err := ca.Ensure(p, []string{"127.0.0.4"}); err != nil || !issued {
		t.Fatalf("a certificate ending tomorrow kept: %v, %v", issued, err)
	}
	// The CA is kept: loading it again gives the same one.
	again, err := LoadOrCreateCA(dir)
	if err != nil || !again.Cert.Equal(ca.Cert) || again.SPKIHash() != ca.SPKIHash() {
		t.Fatalf("CA not kept: %v", err)
	}
}

func TestCheckPair(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	// As an ACME client keeps them: the chain in one file, the key in another.
	chain, key := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	if err := ca.IssuePair(chain, key, []string{"s.example.com", "app.example.com"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(dir, "other-key.pem")
	if err := ca.IssuePair(filepath.Join(dir, "other.pem"), otherKey, []string{"s.example.com"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, c := range []struct {
		name       string
		chain, key string
		hosts      []string
		at         time.Time
		want       string // "" for no error
	}{
		{"good", chain, key, []string{"s.example.com", "app.example.com"}, now, ""},
		{"expired", chain, key, []string{"s.example.com"}, now.Add(48 * time.Hour), "expired on"},
		{"wrong name", chain, key, []string{"s.example.com", "www.example.com"}, now, "does not cover www.example.com"},
		{"key of another certificate", chain, otherKey, nil, now, "private key does not match public key"},
		{"key given as the chain", key, key, nil, now, "PEM inputs may have been switched"},
		{"chain given as the key", chain, chain, nil, now, `type ending in "PRIVATE KEY"`},
		{"missing key", chain, filepath.Join(dir, "absent.key"), nil, now, "tls key: open"},
	} {
		err := CheckPair(c.chain, c.key, c.hosts, c.at)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// FuzzCheck gives check arbitrary bytes as the chain and the key, as an
// operator's files may hold anything: it must return, never panic, and
// pass only a pair whose key is its certificate's.
func FuzzCheck(f *testing.F) {
	dir := f.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		f.Fatal(err)
	}
	p := filepath.Join(dir, "seed.pem")
	if err := ca.Issue(p, []string{"s.example.com"}, 24*time.Hour); err != nil {
		f.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	i := bytes.Index(data, []byte("-----BEGIN PRIVATE KEY"))
	f.Add(data[:i], data[i:], "s.example.com")
	f.Add(data, data, "127.0.0.1")
	f.Add(data[:i], data[:i], "")
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), data[i:], "s.example.com")
	f.Add([]byte{}, []byte{}, "")
	now := time.Now()
	f.Fuzz(func(t *testing.T, chain, key []byte, host string) {
		if err := check("fuzz", chain, key, []string{host}, now); err != nil {
			return
		}
		// It passed: the first certificate, read apart from check, is
		// valid now and names the host.
		leaf, err := firstCert(chain)
		if err != nil {
			t.Fatalf("check passed a chain whose first certificate does not parse: %v", err)
		}
		if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) || leaf.VerifyHostname(host) != nil {
			t.Fatalf("check passed a certificate valid %s to %s for %v, at %s for %q", leaf.NotBefore, leaf.NotAfter, leaf.DNSNames, now, host)
		}
	})
}

// firstCert parses the first CERTIFICATE block of PEM data, as a server
// presents it.
func firstCert(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return nil, errors.New("no certificate")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}
