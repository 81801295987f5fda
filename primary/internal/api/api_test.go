package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"shortfleet/provisioning/pgcluster"
	sfsql "shortfleet/sql"
	"shortfleet/sql/codes"
)

type env struct {
	srv   *httptest.Server
	db    *pgxpool.Pool
	codec *codes.Codec
	pg    *pgcluster.Cluster
}

func setup(t *testing.T) *env {
	t.Helper()
	pg, db := pgcluster.StartTestDatabase(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	codec, _ := codes.New([]byte("api-test-key-0123456789"))
	srv := httptest.NewServer(New(Config{ShortBase: "https://sho.rt/"}, logger, db, codec).Handler())
	t.Cleanup(srv.Close)
	return &env{srv: srv, db: db, codec: codec, pg: pg}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(t *testing.T, method, path, key, contentType, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	json.Unmarshal(raw, &a.body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return a
}

func (e *env) json(t *testing.T, method, path, key string, body any) answer {
	t.Helper()
	b, _ := json.Marshal(body)
	return e.do(t, method, path, key, "application/json", string(b))
}

func (e *env) signup(t *testing.T, email string) string {
	t.Helper()
	a := e.json(t, "POST", "/api/signup", "", map[string]string{"email": email, "password": "a good long password"})
	if a.status != http.StatusCreated {
		t.Fatalf("signup %s: %d %s", email, a.status, a.raw)
	}
	return a.body["api_key"].(string)
}

func TestSignup(t *testing.T) {
	e := setup(t)
	key := e.signup(t, "Ann@Example.com")
	if !strings.HasPrefix(key, "sf_") {
		t.Fatalf("api key %q", key)
	}
	var hash string
	e.db.QueryRow(context.Background(), `SELECT password_hash FROM users WHERE email = 'ann@example.com'`).Scan(&hash)
	if !strings.HasPrefix(hash, "$argon2id$") {
		t.Fatalf("stored password hash %q is not argon2id", hash)
	}
	var stored []byte
	e.db.QueryRow(context.Background(), `SELECT key_hash FROM api_keys`).Scan(&stored)
	if bytes.Contains(stored, []byte(key)) || len(stored) != 32 {
		t.Fatalf("api key stored as %x", stored)
	}
	for _, tc := range []struct {
		name, ct, body string
		status         int
		msg            string
	}{
		{"duplicate, other case", "application/json", `{"email":"ANN@example.com","password":"another long password"}`, 409, "exists already"},
		{"bad email", "application/json", `{"email":"not-an-email","password":"a good long password"}`, 400, "not a valid address"},
		{"display name email", "application/json", `{"email":"Ann <x@example.com>","password":"a good long password"}`, 400, "not a valid address"},
		{"short password", "application/json", `{"email":"b@example.com","password":"short"}`, 400, "password must be"},
		{"unknown field", "application/json", `{"email":"b@example.com","password":"a good long password","admin":true}`, 400, "unknown field"},
		{"not json", "application/json", `email=b`, 400, "not the JSON expected"},
		{"trailing", "application/json", `{"email":"b@example.com","password":"a good long password"} {}`, 400, "after the JSON"},
		{"form post", "application/x-www-form-urlencoded", `email=b`, 415, "Content-Type"},
		{"huge", "application/json", `{"email":"` + strings.Repeat("a", maxBody) + `"}`, 413, "over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(t, "POST", "/api/signup", "", tc.ct, tc.body)
			if a.status != tc.status || !strings.Contains(a.raw, tc.msg) {
				t.Fatalf("got %d %s, want %d with %q", a.status, a.raw, tc.status, tc.msg)
			}
		})
	}
}

func TestCreateLink(t *testing.T) {
	e := setup(t)
	key := e.signup(t, "c@example.com")
	a := e.json(t, "POST", "/api/links", key, map[string]any{"target": "HTTPS://Example.COM/x?y=1"})
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	code := a.body["code"].(string)
	id, err := e.codec.DecodeString(code)
	if err != nil {
		t.Fatalf("code %q does not decode: %v", code, err)
	}
	if a.body["short_url"] != "https://sho.rt/"+code || a.body["target"] != "https://example.com/x?y=1" || a.body["redirect_type"] != 302.0 {
		t.Fatalf("answer %s", a.raw)
	}
	l, err := sfsql.LinkByID(context.Background(), e.db, id)
	if err != nil || l.Target != "https://example.com/x?y=1" || l.RedirectType != 302 {
		t.Fatalf("stored link %+v, %v", l, err)
	}
	if a := e.json(t, "POST", "/api/links", key, map[string]any{"target": "https://example.com/", "redirect_type": 308}); a.status != 201 || a.body["redirect_type"] != 308.0 {
		t.Fatalf("308: %d %s", a.status, a.raw)
	}
	for _, tc := range []struct {
		name   string
		key    string
		body   any
		status int
		msg    string
	}{
		{"no key", "", map[string]any{"target": "https://example.com/"}, 401, "Authorization: Bearer"},
		{"bad key", "sf_nope", map[string]any{"target": "https://example.com/"}, 401, "not valid"},
		{"unknown key", "sf_" + strings.Repeat("A", 43), map[string]any{"target": "https://example.com/"}, 401, "not valid"},
		{"javascript", key, map[string]any{"target": "javascript:alert(1)"}, 400, "only http and https"},
		{"no scheme", key, map[string]any{"target": "example.com"}, 400, "no scheme"},
		{"too long", key, map[string]any{"target": "https://example.com/" + strings.Repeat("a", 3000)}, 400, "the limit is 2048"},
		{"bad type", key, map[string]any{"target": "https://example.com/", "redirect_type": 303}, 400, "not one of 301, 302, 307, 308"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.json(t, "POST", "/api/links", tc.key, tc.body)
			if a.status != tc.status || !strings.Contains(a.raw, tc.msg) {
				t.Fatalf("got %d %s, want %d with %q", a.status, a.raw, tc.status, tc.msg)
			}
		})
	}
	// A revoked key is refused.
	e.db.Exec(context.Background(), `UPDATE api_keys SET revoked_at = now()`)
	if a := e.json(t, "POST", "/api/links", key, map[string]any{"target": "https://example.com/"}); a.status != 401 {
		t.Fatalf("revoked key: %d %s", a.status, a.raw)
	}
}

func TestStats(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	key := e.signup(t, "s@example.com")
	other := e.signup(t, "o@example.com")
	code := e.json(t, "POST", "/api/links", key, map[string]any{"target": "https://example.com/"}).body["code"].(string)
	id, _ := e.codec.DecodeString(code)
	h := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i, n := range []int{5, 7, 11} {
		if _, err := e.db.Exec(ctx, `INSERT INTO clicks_hourly VALUES ($1, $2, $3)`, id, h.Add(time.Duration(i)*time.Hour), n); err != nil {
			t.Fatal(err)
		}
	}
	a := e.do(t, "GET", "/api/links/"+code+"/stats", key, "", "")
	if a.status != 200 || a.body["total"] != 23.0 || len(a.body["hourly"].([]any)) != 3 {
		t.Fatalf("stats: %d %s", a.status, a.raw)
	}
	first := a.body["hourly"].([]any)[0].(map[string]any)
	if first["hour"] != "2026-11-22T10:00:00Z" || first["clicks"] != 5.0 {
		t.Fatalf("first hour %v", first)
	}
	a = e.do(t, "GET", "/api/links/"+code+"/stats?from=2026-11-22T11:00:00Z&to=2026-11-22T12:00:00Z", key, "", "")
	if a.status != 200 || a.body["total"] != 7.0 {
		t.Fatalf("range: %d %s", a.status, a.raw)
	}
	for _, tc := range []struct {
		name, path, key string
		status          int
	}{
		{"another user's link", "/api/links/" + code + "/stats", other, 404},
		{"not a code", "/api/links/nope/stats", key, 404},
		{"bad from", "/api/links/" + code + "/stats?from=yesterday", key, 400},
		{"no key", "/api/links/" + code + "/stats", "", 401},
		{"unknown endpoint", "/api/nothing", key, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := e.do(t, "GET", tc.path, tc.key, "", ""); a.status != tc.status || a.body["error"] == nil {
				t.Fatalf("got %d %s, want %d with an error message", a.status, a.raw, tc.status)
			}
		})
	}
}

// TestDatabaseDown: with the primary database stopped, creation answers 503
// with Retry-After and a clear message.
func TestDatabaseDown(t *testing.T) {
	e := setup(t)
	key := e.signup(t, "d@example.com")
	if err := e.pg.Stop(); err != nil {
		t.Fatal(err)
	}
	e.db.Reset()
	a := e.json(t, "POST", "/api/links", key, map[string]any{"target": "https://example.com/"})
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.Contains(a.raw, "database is unavailable") {
		t.Fatalf("got %d %v %s", a.status, a.header, a.raw)
	}
}
