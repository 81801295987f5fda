package api

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"shortfleet/primary/internal/limit"
	"shortfleet/primary/internal/store"
	sfsql "shortfleet/sql"
)

// The QR codes' images are checked against openapi.json as files.
func init() {
	openapi3filter.RegisterBodyDecoder("image/svg+xml", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("image/png", openapi3filter.FileBodyDecoder)
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestChangePassword: with the current password, the password changes
// (argon2id), every session of the account ends and its API keys keep
// working; a wrong current password is a 403 naming the field, a new
// one the policy refuses a 400 naming the field, and neither changes
// anything; a read-only key cannot change it.
func TestChangePassword(t *testing.T) {
	e := setup(t, limit.Limits{})
	ctx := context.Background()
	key := e.signup("pw@example.com")
	u, err := e.api.st.Login(ctx, "pw@example.com", "a good long password")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.api.st.CreateSession(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.signup("bystander@example.com")
	by, _ := e.api.st.Login(ctx, "bystander@example.com", "a good long password")
	e.api.st.CreateSession(ctx, by.ID)
	ro := e.json("POST", "/api/keys", key, map[string]string{"name": "ro", "scope": "read"}).body["api_key"].(string)
	for _, tc := range []struct {
		name, key string
		body      any
		status    int
		msg       string
	}{
		{"wrong current", key, map[string]string{"current_password": "not the password", "new_password": "a new long password"}, 403, "current_password is wrong"},
		{"no current", key, map[string]string{"new_password": "a new long password"}, 400, "current_password is missing"},
		{"short new", key, map[string]string{"current_password": "a good long password", "new_password": "short"}, 400, "new_password: password must be 10 to 256"},
		{"read-only key", ro, map[string]string{"current_password": "a good long password", "new_password": "a new long password"}, 403, "read-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.json("POST", "/api/account/password", tc.key, tc.body)
			if a.status != tc.status || !strings.Contains(a.raw, tc.msg) {
				t.Fatalf("got %d %s, want %d with %q", a.status, a.raw, tc.status, tc.msg)
			}
			if n := e.count(`SELECT count(*) FROM sessions WHERE user_id = $1`, u.ID); n != 2 {
				t.Fatalf("%d sessions after a refusal, want 2", n)
			}
		})
	}
	a := e.json("POST", "/api/account/password", key, map[string]string{"current_password": "a good long password", "new_password": "a new long password"})
	if a.status != 200 || a.body["sessions_ended"] != 2.0 {
		t.Fatalf("change: %d %s", a.status, a.raw)
	}
	if n := e.count(`SELECT count(*) FROM sessions WHERE user_id = $1`, u.ID); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	if n := e.count(`SELECT count(*) FROM sessions WHERE user_id = $1`, by.ID); n != 1 {
		t.Fatalf("another account's sessions: %d, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM users WHERE id = $1 AND password_hash LIKE '$argon2id$%'`, u.ID); n != 1 {
		t.Fatal("the new password is not stored as argon2id")
	}
	if _, err := e.api.st.Login(ctx, "pw@example.com", "a good long password"); err == nil {
		t.Fatal("the old password still logs in")
	}
	if _, err := e.api.st.Login(ctx, "pw@example.com", "a new long password"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if g := e.do("GET", "/api/links", key, "", ""); g.status != 200 {
		t.Fatalf("the API key after the change: %d", g.status)
	}
}

// TestDeleteAccount: with the password again, the account goes: its
// links stay as disabled tombstones owned by nobody, their targets
// blanked, each written to the change feed (which the proxies evict
// by); their stats and tags go; its sessions and keys go, and a key that
// was just used (cached) is refused at once; the email signs up again,
// the new account sees none of the old links, and the old alias stays
// taken. Another account's links and stats are untouched. A wrong or
// missing password deletes nothing.
func TestDeleteAccount(t *testing.T) {
	e := setup(t, limit.Limits{})
	ctx := context.Background()
	key := e.signup("gone@example.com")
	otherKey := e.signup("stays@example.com")
	a := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/mine", "alias": "my-alias", "tags": []string{"x"}})
	b := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/mine2", "password": "a link password",
		"rules": []map[string]string{{"kind": "device", "value": "ios", "target": "https://example.com/mine2-ios"}}})
	o := e.json("POST", "/api/links", otherKey, map[string]any{"target": "https://example.com/theirs", "tags": []string{"x"}})
	ids := []int64{}
	for _, l := range []answer{a, b, o} {
		id, _ := e.codec.DecodeString(l.body["code"].(string))
		ids = append(ids, id)
		e.db.Exec(ctx, `INSERT INTO clicks_hourly VALUES ($1, $2, 5, 1)`, id, time.Now().UTC().Truncate(time.Hour))
		e.db.Exec(ctx, `INSERT INTO link_daily VALUES ($1, $2, 5, 1, $3, '{}')`, id, time.Now().UTC().Truncate(24*time.Hour), visitors(t, 1))
	}
	u, _ := e.api.st.Login(ctx, "gone@example.com", "a good long password")
	e.api.st.CreateSession(ctx, u.ID)
	feedBefore := e.count(`SELECT count(*) FROM link_changes`)

	for _, tc := range []struct {
		body   any
		status int
		msg    string
	}{
		{map[string]string{"password": "not it at all"}, 403, "password is wrong"},
		{map[string]string{}, 400, "password is missing"},
	} {
		if r := e.json("DELETE", "/api/account", key, tc.body); r.status != tc.status || !strings.Contains(r.raw, tc.msg) {
			t.Fatalf("delete with %v: %d %s, want %d %q", tc.body, r.status, r.raw, tc.status, tc.msg)
		}
	}
	if n := e.count(`SELECT count(*) FROM links WHERE user_id = $1 AND NOT disabled`, u.ID); n != 2 {
		t.Fatalf("a refused deletion left %d of 2 links", n)
	}
	if g := e.do("GET", "/api/links", key, "", ""); g.status != 200 { // the key is now in the cache
		t.Fatalf("list: %d", g.status)
	}
	d := e.json("DELETE", "/api/account", key, map[string]string{"password": "a good long password"})
	if d.status != 200 || d.body["links_disabled"] != 2.0 {
		t.Fatalf("delete: %d %s", d.status, d.raw)
	}
	if g := e.do("GET", "/api/links", key, "", ""); g.status != http.StatusUnauthorized {
		t.Fatalf("the deleted account's key: %d, want 401", g.status)
	}
	if n := e.count(`SELECT count(*) FROM links WHERE id = ANY($1) AND disabled AND user_id IS NULL AND target = ''
			AND rules IS NULL AND password_hash IS NULL`, ids[:2]); n != 2 {
		t.Fatalf("%d of 2 links are tombstones without targets, rules or password hashes", n)
	}
	if n := e.count(`SELECT count(DISTINCT link_id) FROM link_changes WHERE link_id = ANY($1)`, ids[:2]); n != 2 || e.count(`SELECT count(*) FROM link_changes`) <= feedBefore {
		t.Fatalf("change feed rows for %d of 2 links", n)
	}
	for _, q := range []string{`SELECT count(*) FROM clicks_hourly WHERE link_id = ANY($1)`, `SELECT count(*) FROM link_daily WHERE link_id = ANY($1)`,
		`SELECT count(*) FROM link_tags WHERE link_id = ANY($1)`} {
		if n := e.count(q, ids[:2]); n != 0 {
			t.Fatalf("%s: %d left", q, n)
		}
		if n := e.count(q, ids[2:]); n != 1 {
			t.Fatalf("%s: the other account's %d, want 1", q, n)
		}
	}
	if n := e.count(`SELECT (SELECT count(*) FROM sessions WHERE user_id = $1) + (SELECT count(*) FROM api_keys WHERE user_id = $1)
		+ (SELECT count(*) FROM users WHERE id = $1)`, u.ID); n != 0 {
		t.Fatalf("%d sessions, keys or user rows left", n)
	}
	again := e.signup("gone@example.com")
	if g := e.do("GET", "/api/links/"+a.body["code"].(string), again, "", ""); g.status != 404 {
		t.Fatalf("the new account reads the old link: %d", g.status)
	}
	if l := e.do("GET", "/api/links", again, "", ""); l.body["total"] != 0.0 {
		t.Fatalf("the new account lists %s", l.raw)
	}
	if c := e.json("POST", "/api/links", again, map[string]any{"target": "https://example.com/", "alias": "my-alias"}); c.status != http.StatusConflict {
		t.Fatalf("the old alias: %d, want 409 (never reused)", c.status)
	}
	if g := e.do("GET", "/api/links/"+o.body["code"].(string), otherKey, "", ""); g.status != 200 || g.body["disabled"] != false {
		t.Fatalf("the other account's link: %d %s", g.status, g.raw)
	}
}

// TestDeleteAccountWaitsForStatsWrite: a deletion waits while a
// MapReduce run holds the stats write lock (it may be writing the user's
// stats) and goes through once the run lets go; it then deletes the
// stats the run wrote.
func TestDeleteAccountWaitsForStatsWrite(t *testing.T) {
	e := setup(t, limit.Limits{})
	ctx := context.Background()
	key := e.signup("waits@example.com")
	code := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/w"}).body["code"].(string)
	id, _ := e.codec.DecodeString(code)
	run, err := e.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Rollback(ctx)
	if _, err := run.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sfsql.StatsWriteLock); err != nil {
		t.Fatal(err)
	}
	done := make(chan answer, 1)
	go func() {
		done <- e.json("DELETE", "/api/account", key, map[string]string{"password": "a good long password"})
	}()
	for e.count(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`) == 0 {
		select {
		case d := <-done:
			t.Fatalf("the deletion went through while a run held the stats write lock: %d %s", d.status, d.raw)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The run writes the link's stats and commits.
	if _, err := run.Exec(ctx, `INSERT INTO clicks_hourly VALUES ($1, $2, 5, 1)`, id, time.Now().UTC().Truncate(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := run.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if d := <-done; d.status != 200 || d.body["links_disabled"] != 1.0 {
		t.Fatalf("delete: %d %s", d.status, d.raw)
	}
	if n := e.count(`SELECT count(*) FROM clicks_hourly WHERE link_id = $1`, id); n != 0 {
		t.Fatalf("%d hourly rows the run wrote survive the deletion", n)
	}
}

// TestAccountExport: the export holds the account, its links with every
// alias, tags, totals and daily rows, and its keys by name, prefix and
// scope; no key, key hash or password hash; nothing of another account.
func TestAccountExport(t *testing.T) {
	e := setup(t, limit.Limits{})
	ctx := context.Background()
	key := e.signup("export@example.com")
	e.signup("someone@example.com")
	code := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/x", "alias": "first-alias", "tags": []string{"b", "a"}}).body["code"].(string)
	id, _ := e.codec.DecodeString(code)
	e.db.Exec(ctx, `INSERT INTO aliases (alias, link_id) VALUES ('second-alias', $1)`, id)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	e.db.Exec(ctx, `INSERT INTO link_daily VALUES ($1, $2, 9, 2, $3, '{"country": {"CH": 9}}')`, id, day, visitors(t, 1, 2, 3))
	e.db.Exec(ctx, `INSERT INTO link_daily VALUES ($1, $2, 1, 0, $3, '{}')`, id, day.AddDate(0, 0, 1), visitors(t, 1))
	ro := e.json("POST", "/api/keys", key, map[string]string{"name": "reader", "scope": "read"}).body["api_key"].(string)
	x := e.do("GET", "/api/account/export", ro, "", "")
	if x.status != 200 || !strings.Contains(x.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", x.status, x.header)
	}
	var got store.Export
	if err := json.Unmarshal([]byte(x.raw), &got); err != nil {
		t.Fatal(err)
	}
	if got.User.Email != "export@example.com" || len(got.Links) != 1 || len(got.Keys) != 2 {
		t.Fatalf("export: %s", x.raw)
	}
	l := got.Links[0]
	if l.Code != code || strings.Join(l.Aliases, ",") != "first-alias,second-alias" || strings.Join(l.Tags, ",") != "a,b" ||
		l.Clicks != 10 || l.BotClicks != 2 || len(l.Daily) != 2 || l.Daily[0].Day != "2026-11-20" || l.Daily[0].Uniques != 3 ||
		!strings.Contains(string(l.Daily[0].Dims), `"CH":9`) {
		t.Fatalf("link: %+v", l)
	}
	if got.Keys[1].Name != "reader" || got.Keys[1].Scope != "read" || got.Keys[1].Prefix != ro[:9] {
		t.Fatalf("keys: %+v", got.Keys)
	}
	for _, secret := range []string{key, ro, key[9:], "argon2id", "key_hash", "password", "someone@"} {
		if strings.Contains(x.raw, secret) {
			t.Fatalf("the export holds %q:\n%s", secret, x.raw)
		}
	}
}

// TestQRCodes: a link's QR code as SVG and as PNG (decodable, its size
// following ?scale=); a bad scale is a 400 saying the bounds; another
// account's link a 404.
func TestQRCodes(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("qr@example.com")
	other := e.signup("notqr@example.com")
	code := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/qr"}).body["code"].(string)
	s := e.do("GET", "/api/links/"+code+"/qr.svg", key, "", "")
	if s.status != 200 || s.header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(s.raw, "<svg") {
		t.Fatalf("svg: %d %v", s.status, s.header)
	}
	sizes := map[int]int{}
	for _, scale := range []int{1, 4} {
		p := e.do("GET", "/api/links/"+code+"/qr.png?scale="+jsonNum(float64(scale)), key, "", "")
		img, err := png.Decode(bytes.NewReader([]byte(p.raw)))
		if p.status != 200 || p.header.Get("Content-Type") != "image/png" || err != nil {
			t.Fatalf("png at scale %d: %d %v %v", scale, p.status, p.header, err)
		}
		sizes[scale] = img.Bounds().Dx()
	}
	if sizes[4] != 4*sizes[1] || sizes[1] < 21+8 {
		t.Fatalf("PNG sides %v", sizes)
	}
	for _, q := range []string{"0", "33", "big"} {
		if b := e.do("GET", "/api/links/"+code+"/qr.png?scale="+q, key, "", ""); b.status != 400 || !strings.Contains(b.raw, "from 1 to 32") {
			t.Fatalf("scale %s: %d %s", q, b.status, b.raw)
		}
	}
	for _, ext := range []string{"svg", "png"} {
		if g := e.do("GET", "/api/links/"+code+"/qr."+ext, other, "", ""); g.status != 404 {
			t.Fatalf("another account's qr.%s: %d", ext, g.status)
		}
	}
}
