package redirect

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/valyala/fasthttp"
)

// testPasswordParams are cheap argon2id costs for tests; the checks read
// the costs from the stored hash, so they run the same code.
var testPasswordParams = &argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// protectedLink creates a password-protected link; rules is a JSON array
// or "".
func (e *env) protectedLink(target, password string, params *argon2id.Params, forward bool, rules string) int64 {
	e.t.Helper()
	hash, err := argon2id.CreateHash(password, params)
	if err != nil {
		e.t.Fatal(err)
	}
	var r *string
	if rules != "" {
		r = &rules
	}
	var id int64
	if err := e.pdb.QueryRow(context.Background(), `INSERT INTO links (user_id, target, password_hash, forward_query, rules)
		VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id`, e.user, target, hash, forward, r).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func postPassword(path, pw string) string {
	body := "password=" + pw
	return "POST " + path + " HTTP/1.1\r\nHost: sho.rt\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body
}

// TestPasswordLink: a protected link answers a form without script under
// a strict CSP, a wrong password 403, the right one the redirect (to the
// rule's target, with the query forwarded); guesses past the burst are
// 429 per link and address; a guess finding the pool full is 503; each
// outcome is logged with its status.
func TestPasswordLink(t *testing.T) {
	e := setup(t, setupOpts{})
	e.srv.pw = newPasswords(PasswordConfig{Burst: 3})
	id := e.protectedLink("https://example.com/secret?a=1", "open sesame 123", testPasswordParams, true,
		`[{"kind":"language","value":"fr","target":"https://example.fr/secret"}]`)
	e.waitReplay()
	path := "/" + e.code(id) + "?utm=x"

	form := e.get(path)
	csp := string(form.Header.Peek("Content-Security-Policy"))
	if form.StatusCode() != 200 || !strings.Contains(string(form.Body()), `<form method=post action="/`+e.code(id)+`?utm=x">`) ||
		strings.Contains(strings.ToLower(string(form.Body())), "<script") || len(form.Header.Peek("Location")) != 0 ||
		csp != "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' https://example.com" {
		t.Fatalf("form: %d CSP %q\n%s", form.StatusCode(), csp, form.Body())
	}
	if r := e.raw(postPassword(path, "wrong")); r.StatusCode() != 403 || !strings.Contains(string(r.Body()), "Wrong password.") {
		t.Fatalf("wrong password: %d %s", r.StatusCode(), r.Body())
	}
	if r := e.raw(postPassword(path, "open+sesame+123")); r.StatusCode() != 302 || string(r.Header.Peek("Location")) != "https://example.com/secret?a=1&utm=x" ||
		string(r.Header.Peek("Cache-Control")) != "private, no-store" {
		t.Fatalf("right password: %d %q", r.StatusCode(), r.Header.Peek("Location"))
	}
	fr := postPassword(path, "open+sesame+123")
	fr = strings.Replace(fr, "Host: sho.rt\r\n", "Host: sho.rt\r\nAccept-Language: fr\r\n", 1)
	if r := e.raw(fr); r.StatusCode() != 302 || string(r.Header.Peek("Location")) != "https://example.fr/secret?utm=x" {
		t.Fatalf("right password, rule: %d %q", r.StatusCode(), r.Header.Peek("Location"))
	}
	// The burst (3) is spent: even the right password is refused now.
	if r := e.raw(postPassword(path, "open+sesame+123")); r.StatusCode() != 429 || len(r.Header.Peek("Retry-After")) == 0 {
		t.Fatalf("past the burst: %d", r.StatusCode())
	}
	// Another address has its own bucket; with the pool's one slot held,
	// its guess is refused at once, unhashed.
	e.srv.pw.slots <- struct{}{}
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI(path)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.SetBodyString("password=open+sesame+123")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 50), Port: 1}, nil)
	e.srv.Handle(&ctx)
	if ctx.Response.StatusCode() != 503 {
		t.Fatalf("pool full: %d", ctx.Response.StatusCode())
	}
	<-e.srv.pw.slots
	ctx.Response.Reset()
	e.srv.Handle(&ctx)
	if ctx.Response.StatusCode() != 302 {
		t.Fatalf("pool free again: %d", ctx.Response.StatusCode())
	}
	// A POST to a link without a password is still 405.
	if r := e.raw(postPassword("/"+e.code(e.ids["302"]), "x")); r.StatusCode() != 405 {
		t.Fatalf("POST to a plain link: %d", r.StatusCode())
	}
	got := map[uint16]int{}
	for _, row := range e.records() {
		if row.LinkID == id && row.Method == "POST" {
			got[row.Status]++
		}
	}
	if got[403] != 1 || got[302] != 3 || got[429] != 1 || got[503] != 1 {
		t.Fatalf("logged POST outcomes %v, want 403:1 302:3 429:1 503:1", got)
	}
}

func TestPlainHost(t *testing.T) {
	for h, want := range map[string]bool{"example.com": true, "example.com:8443": true, "[2001:db8::1]:443": true,
		"a;script-src": false, "a b": false, "": false, "ex'ample": false} {
		if got := plainHost(h); got != want {
			t.Errorf("plainHost(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestPasswordPoolBounded: with every slot taken, guesses wait in a line
// of at most MaxWaiting; one more is refused at once, without waiting its
// turn; a slot freed goes to a waiting guess.
func TestPasswordPoolBounded(t *testing.T) {
	hash, err := argon2id.CreateHash("the password", testPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	p := newPasswords(PasswordConfig{Workers: 1, Wait: time.Hour, MaxWaiting: 2})
	p.slots <- struct{}{} // every slot taken
	results := make(chan bool, 2)
	for range 2 {
		go func() {
			ok, busy := p.check([]byte("the password"), hash)
			results <- ok && !busy
		}()
	}
	for p.waiting.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	if ok, busy := p.check([]byte("the password"), hash); ok || !busy {
		t.Fatalf("a guess past the line: ok %v busy %v, want refused at once", ok, busy)
	}
	<-p.slots // the slot is free: the waiting guesses are checked in turn
	for range 2 {
		if !<-results {
			t.Fatal("a waiting guess was not checked")
		}
	}
}
