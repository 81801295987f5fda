package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestTagsInTheBrowser: tags typed on creation and on the link page are
// shown, the list and both exports filter by tag, the tag's page shows
// its links' stats together; a 10 KB tag is refused on the form with the
// rule said and changes nothing; a tag form without its CSRF token is
// refused.
func TestTagsInTheBrowser(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("tagger@example.com")
	resp, body := b.post("/links", "/links", url.Values{"target": {"https://example.com/one"}, "tags": {"Spring, sale"}, "redirect_type": {"302"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create with tags: %d %s", resp.StatusCode, body)
	}
	one := codeRE.FindStringSubmatch(body)[1]
	two := b.create("https://example.com/two", "")
	b.create("https://example.com/three", "")
	if resp, _ := b.post("/links/"+two, "/links/"+two, url.Values{"action": {"tags"}, "tags": {"spring q4"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("tags on the link page: %d", resp.StatusCode)
	}
	if _, page := b.get("/links/" + two); !strings.Contains(page, `href="/tags/q4">q4</a>`) || !strings.Contains(page, `value="q4, spring"`) {
		t.Fatalf("the link page does not show its tags:\n%s", page)
	}
	_, list := b.get("/links?tag=spring")
	if !strings.Contains(list, one) || !strings.Contains(list, two) || strings.Contains(list, "example.com/three") || !strings.Contains(list, `id="tagfilter"`) {
		t.Fatalf("the list by tag:\n%s", list)
	}
	if resp, csv := b.get("/links/export.csv?tag=sale"); resp.StatusCode != 200 || strings.Count(csv, "\n") != 2 || !strings.Contains(csv, ",sale spring\n") {
		t.Fatalf("CSV export by tag: %d\n%s", resp.StatusCode, csv)
	}
	if resp, js := b.get("/links/export.json?tag=q4"); resp.StatusCode != 200 || strings.Count(js, `"code"`) != 1 || !strings.Contains(js, two) {
		t.Fatalf("JSON export by tag: %d\n%s", resp.StatusCode, js)
	}
	if resp, page := b.get("/tags/spring?range=24h"); resp.StatusCode != 200 || !strings.Contains(page, `id="chart"`) || !strings.Contains(page, "2 links carry this tag") {
		t.Fatalf("tag page: %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := b.get("/tags/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a tag no link carries: %d", resp.StatusCode)
	}

	huge := strings.Repeat("x", 10<<10)
	resp, page := b.post("/links/"+two, "/links/"+two, url.Values{"action": {"tags"}, "tags": {"ok, " + huge}})
	alert := regexp.MustCompile(`role="alert">([^<]*)<`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusBadRequest || alert == nil || !strings.Contains(alert[1], "1 to 64 characters of a-z, 0-9") || len(alert[1]) > 300 {
		t.Fatalf("a 10 KB tag: %d\n%.2000s", resp.StatusCode, page)
	}
	if !strings.Contains(page, `name="tags" value="ok, `+huge+`"`) {
		t.Fatal("the refused tags are not on the form again to fix")
	}
	resp, page = b.post("/links", "/links", url.Values{"target": {"https://example.com/four"}, "tags": {huge}, "redirect_type": {"302"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "1 to 64 characters") {
		t.Fatalf("a 10 KB tag on creation: %d", resp.StatusCode)
	}
	if n := e.count(`SELECT count(*) FROM links WHERE target = 'https://example.com/four'`); n != 0 {
		t.Fatalf("a refused creation made %d links", n)
	}
	if resp, _ := b.post("", "/links/"+two, url.Values{"action": {"tags"}, "tags": {"stolen"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tags without a CSRF token: %d", resp.StatusCode)
	}
	if n := e.count(`SELECT count(*) FROM link_tags`); n != 4 {
		t.Fatalf("%d tags stored after the refusals, want 4", n)
	}
}
