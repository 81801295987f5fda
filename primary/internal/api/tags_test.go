package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"shortfleet/primary/internal/limit"
	sfsql "shortfleet/sql"
)

// visitors is the stored sketch of the visitors hs.
func visitors(t *testing.T, hs ...uint64) []byte {
	t.Helper()
	var v sfsql.Visitors
	for _, h := range hs {
		v.Add(h)
	}
	b, err := v.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTags: tags are put on at creation, replaced by PATCH, added and
// removed by their own endpoints; the list and both exports filter by
// tag; the tag's stats add up its links' (visitors counted once across
// them); a 10 KB tag, a tag with a space and a 21st tag are refused with
// a 400 that says the rule, and change nothing; another account's link
// and tag are 404s.
func TestTags(t *testing.T) {
	e := setup(t, limit.Limits{})
	ctx := context.Background()
	key := e.signup("tags@example.com")
	other := e.signup("other@example.com")
	a := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/a", "tags": []string{"Spring", "sale", "spring"}})
	if a.status != 201 || strings.Join(toStrings(a.body["tags"]), ",") != "sale,spring" {
		t.Fatalf("create with tags: %d %s", a.status, a.raw)
	}
	codeA := a.body["code"].(string)
	b := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/b", "alias": "bee-link"})
	if b.status != 201 || len(b.body["tags"].([]any)) != 0 {
		t.Fatalf("create without tags: %d %s", b.status, b.raw)
	}
	codeB := b.body["code"].(string)
	e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/c", "tags": []string{"other"}})
	if g := e.json("POST", "/api/links/bee-link/tags", key, map[string]any{"tags": []string{"spring"}}); g.status != 200 ||
		strings.Join(toStrings(g.body["tags"]), ",") != "spring" {
		t.Fatalf("add a tag by alias: %d %s", g.status, g.raw)
	}
	if p := e.json("PATCH", "/api/links/"+codeA, key, map[string]any{"tags": []string{"spring", "q4"}}); p.status != 200 ||
		strings.Join(toStrings(p.body["tags"]), ",") != "q4,spring" {
		t.Fatalf("replace tags: %d %s", p.status, p.raw)
	}
	if d := e.do("DELETE", "/api/links/"+codeA+"/tags/q4", key, "", ""); d.status != 200 || strings.Join(toStrings(d.body["tags"]), ",") != "spring" {
		t.Fatalf("remove a tag: %d %s", d.status, d.raw)
	}

	// Refusals: 400 naming the rule, nothing changed.
	many := make([]string, 21)
	for i := range many {
		many[i] = "t" + strings.Repeat("x", i)
	}
	for _, tc := range []struct {
		name, method, path string
		body               any
		msg                string
	}{
		{"10 KB on create", "POST", "/api/links", map[string]any{"target": "https://example.com/d", "tags": []string{strings.Repeat("x", 10<<10)}}, "1 to 64 characters of a-z, 0-9, '-' and '_'"},
		{"space on patch", "PATCH", "/api/links/" + codeA, map[string]any{"tags": []string{"two words"}}, `two words\" is refused`},
		{"21 on patch", "PATCH", "/api/links/" + codeA, map[string]any{"tags": many}, "at most 20"},
		{"19 more on add", "POST", "/api/links/" + codeA + "/tags", map[string]any{"tags": many[:20]}, "at most 20"},
		{"none to add", "POST", "/api/links/" + codeA + "/tags", map[string]any{"tags": []string{}}, "at least one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.json(tc.method, tc.path, key, tc.body)
			if r.status != 400 || !strings.Contains(r.raw, tc.msg) || len(r.raw) > 400 {
				t.Fatalf("got %d %s, want 400 with %q", r.status, r.raw, tc.msg)
			}
		})
	}
	if g := e.do("GET", "/api/links/"+codeA, key, "", ""); strings.Join(toStrings(g.body["tags"]), ",") != "spring" {
		t.Fatalf("after refusals: %s", g.raw)
	}
	if r := e.do("GET", "/api/links?tag="+strings.Repeat("x", 100), key, "", ""); r.status != 400 || !strings.Contains(r.raw, "1 to 64") {
		t.Fatalf("list by a tag too long: %d %s", r.status, r.raw)
	}

	// Filters: list, CSV and JSON export.
	l := e.do("GET", "/api/links?tag=SPRING", key, "", "")
	if l.status != 200 || l.body["total"] != 2.0 {
		t.Fatalf("list by tag: %d %s", l.status, l.raw)
	}
	x := e.do("GET", "/api/links/export?tag=spring", key, "", "")
	if x.status != 200 || strings.Count(x.raw, "\n") != 3 || !strings.Contains(x.raw, "bee-link") || strings.Contains(x.raw, "example.com/c") {
		t.Fatalf("CSV export by tag: %d %s", x.status, x.raw)
	}
	j := e.do("GET", "/api/links/export?tag=other&format=json", key, "", "")
	if j.status != 200 || len(j.body["links"].([]any)) != 1 {
		t.Fatalf("JSON export by tag: %d %s", j.status, j.raw)
	}
	if f := e.do("GET", "/api/links/export?format=xml", key, "", ""); f.status != 400 || !strings.Contains(f.raw, "format") {
		t.Fatalf("export format xml: %d %s", f.status, f.raw)
	}
	if tl := e.do("GET", "/api/tags", key, "", ""); tl.status != 200 || !strings.Contains(tl.raw, `{"tag":"spring","links":2}`) {
		t.Fatalf("list tags: %d %s", tl.status, tl.raw)
	}

	// Stats of the tag: both links' clicks added, visitors counted once.
	idA, _ := e.codec.DecodeString(codeA)
	idB, _ := e.codec.DecodeString(codeB)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	for _, r := range []struct {
		id     int64
		clicks int
		dims   string
		vis    []uint64
	}{{idA, 5, `{"country": {"CH": 5}}`, []uint64{1, 2, 3}}, {idB, 7, `{"country": {"CH": 4, "JP": 3}}`, []uint64{3, 4}}} {
		if _, err := e.db.Exec(ctx, `INSERT INTO link_daily VALUES ($1, $2, $3, 1, $4, $5)`, r.id, day, r.clicks, visitors(t, r.vis...), r.dims); err != nil {
			t.Fatal(err)
		}
	}
	s := e.do("GET", "/api/tags/spring/stats?range=7d", key, "", "")
	top := s.body["top"].(map[string]any)["country"].([]any)
	if s.status != 200 || s.body["clicks"] != 12.0 || s.body["bots"] != 2.0 || s.body["uniques"] != 4.0 || s.body["links"] != 2.0 ||
		top[0].(map[string]any)["clicks"] != 9.0 {
		t.Fatalf("tag stats: %d %s", s.status, s.raw)
	}
	// By hour: both links' clicks of the same hour land in one bucket.
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	for _, r := range []struct {
		id           int64
		clicks, bots int
	}{{idA, 3, 1}, {idB, 4, 0}} {
		if _, err := e.db.Exec(ctx, `INSERT INTO clicks_hourly VALUES ($1, $2, $3, $4)`, r.id, hour, r.clicks, r.bots); err != nil {
			t.Fatal(err)
		}
	}
	h := e.do("GET", "/api/tags/spring/stats?range=24h&granularity=hour", key, "", "")
	var bucket map[string]any
	for _, p := range h.body["series"].([]any) {
		if p.(map[string]any)["time"] == hour.Format(time.RFC3339) {
			bucket = p.(map[string]any)
		}
	}
	if h.status != 200 || h.body["clicks"] != 7.0 || bucket == nil || bucket["clicks"] != 7.0 || bucket["bots"] != 1.0 {
		t.Fatalf("tag stats by hour: %d, bucket %v\n%s", h.status, bucket, h.raw)
	}
	for _, p := range []string{"/api/tags/spring/stats", "/api/links/" + codeA + "/tags/spring"} {
		method := "GET"
		if strings.Contains(p, "/links/") {
			method = "DELETE"
		}
		if r := e.do(method, p, other, "", ""); r.status != http.StatusNotFound {
			t.Fatalf("another account's %s %s: %d %s", method, p, r.status, r.raw)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
