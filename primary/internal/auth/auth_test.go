package auth

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/alexedwards/argon2id"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id with our parameters", h)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery", true},
		{"correct horse batterY", false},
		{"", false},
		{strings.Repeat("x", MaxPasswordLen+1), false},
	} {
		ok, err := CheckPassword(tc.pw, h)
		if err != nil || ok != tc.want {
			t.Errorf("check %q: %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
	for _, pw := range []string{"short", strings.Repeat("x", MaxPasswordLen+1)} {
		if _, err := HashPassword(pw); err != ErrPasswordPolicy {
			t.Errorf("hash of %d-byte password: %v, want ErrPasswordPolicy", len(pw), err)
		}
	}
}

// TestHasherRefusesBadParams: costs RFC 9106 does not allow are an error
// of the server's, not ErrPasswordPolicy and not a panic (argon2 panics
// on no pass or no lane); a password outside the bounds is still
// ErrPasswordPolicy first; the smallest allowed costs hash.
func TestHasherRefusesBadParams(t *testing.T) {
	ok := *PasswordParams
	for _, tc := range []struct {
		name string
		edit func(*argon2id.Params)
	}{
		{"no pass", func(p *argon2id.Params) { p.Iterations = 0 }},
		{"no lane", func(p *argon2id.Params) { p.Parallelism = 0 }},
		{"under 8 KiB a lane", func(p *argon2id.Params) { p.Parallelism, p.Memory = 4, 31 }},
		{"short salt", func(p *argon2id.Params) { p.SaltLength = 7 }},
		{"short tag", func(p *argon2id.Params) { p.KeyLength = 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			h := Hasher{Params: &p}
			if hash, err := h.Hash("correct horse battery"); err == nil || errors.Is(err, ErrPasswordPolicy) {
				t.Fatalf("got %q, %v; want an error other than ErrPasswordPolicy", hash, err)
			}
			if _, err := h.Hash("short"); !errors.Is(err, ErrPasswordPolicy) {
				t.Fatalf("short password: %v, want ErrPasswordPolicy", err)
			}
		})
	}
	least := argon2id.Params{Memory: 8, Iterations: 1, Parallelism: 1, SaltLength: 8, KeyLength: 4}
	hash, err := Hasher{Params: &least}.Hash("correct horse battery")
	if err != nil {
		t.Fatalf("the least costs allowed: %v", err)
	}
	if ok, err := CheckPassword("correct horse battery", hash); !ok || err != nil {
		t.Fatalf("check against %q: %v, %v", hash, ok, err)
	}
}

func TestAPIKey(t *testing.T) {
	k, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := NewAPIKey()
	if k == k2 {
		t.Fatal("two keys are equal")
	}
	h, err := HashAPIKey(k)
	if err != nil || len(h) != 32 {
		t.Fatalf("hash of %q: %x, %v", k, h, err)
	}
	for _, bad := range []string{"", "sf_", "xx_" + k[3:], k + "a", k[:len(k)-1]} {
		if _, err := HashAPIKey(bad); err != ErrMalformedKey {
			t.Errorf("hash of %q: %v, want ErrMalformedKey", bad, err)
		}
	}
	if p := DisplayPrefix(k); len(p) != 9 || !strings.HasPrefix(k, p) {
		t.Errorf("display prefix %q of %q", p, k)
	}
}

// FuzzHashAPIKey: a bearer token is hashed only when it has the shape of
// an API key, and then to its SHA-256; anything else is ErrMalformedKey
// without a database lookup.
func FuzzHashAPIKey(f *testing.F) {
	k, _ := NewAPIKey()
	f.Add(k)
	f.Add("sf_")
	f.Add("sf_" + strings.Repeat("\xff", 43))
	f.Add("SF_" + k[3:])
	f.Fuzz(func(t *testing.T, key string) {
		h, err := HashAPIKey(key)
		shaped := len(key) == len(KeyPrefix)+43 && strings.HasPrefix(key, KeyPrefix)
		if (err == nil) != shaped {
			t.Fatalf("%q: %v, shaped %v", key, err, shaped)
		}
		if err == nil {
			if sum := sha256.Sum256([]byte(key)); !bytes.Equal(h, sum[:]) {
				t.Fatalf("%q: hash %x", key, h)
			}
		} else if !errors.Is(err, ErrMalformedKey) {
			t.Fatalf("%q: %v", key, err)
		}
	})
}
