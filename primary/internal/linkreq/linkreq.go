// Package linkreq is what the primary's two front ends, the browser UI
// and the JSON API, share about links: checking a link to create,
// reading list options and stats ranges from a query string, showing a
// link with its short URLs, and exporting an account's links as CSV. Each
// exists once here so the two doors accept, refuse and answer alike; the
// front ends only word the answers their own way (a page, a JSON error).
package linkreq

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"shortfleet/primary/internal/store"
	"shortfleet/primary/internal/target"
)

// CheckNew validates a link to create, saying what is wrong.
func CheckNew(p *target.Policy, tgt, alias string, redirectType int) (store.NewLink, error) {
	t, err := p.Check(tgt)
	if err != nil {
		return store.NewLink{}, err
	}
	switch redirectType {
	case 0:
		redirectType = http.StatusFound
	case 301, 302, 307, 308:
	default:
		return store.NewLink{}, fmt.Errorf("redirect_type %d is not one of 301, 302, 307, 308", redirectType)
	}
	if alias != "" {
		if err := target.ValidAlias(alias); err != nil {
			return store.NewLink{}, err
		}
	}
	return store.NewLink{Target: t, Alias: alias, RedirectType: redirectType}, nil
}

// ListOptions reads list options from a query string: q, tag, sort, page
// and per_page; ListFilter checks the tag too. Numbers that do not parse are 0, which the store reads as its
// defaults; the store also bounds them (see store.ListOptions).
func ListOptions(q url.Values) store.ListOptions {
	page, _ := strconv.Atoi(q.Get("page"))
	per, _ := strconv.Atoi(q.Get("per_page"))
	return store.ListOptions{Query: q.Get("q"), Tag: q.Get("tag"), Sort: q.Get("sort"), Page: page, PerPage: per}
}

// ListFilter is ListOptions with the tag checked (ParseTag) and
// lower-cased: a tag that can never exist is refused, not searched for.
func ListFilter(q url.Values) (store.ListOptions, error) {
	o := ListOptions(q)
	if o.Tag != "" {
		t, err := ParseTag(o.Tag)
		if err != nil {
			return o, err
		}
		o.Tag = t
	}
	return o, nil
}

// StatsRange reads from, to and granularity from a query string: RFC 3339
// times, or a range like "7d" or "24h" ending now; the default is 7 days
// by day.
func StatsRange(q url.Values, now time.Time) (from, to time.Time, gran string, err error) {
	to = now.UTC()
	from = to.Add(-7 * 24 * time.Hour)
	if v := q.Get("range"); v != "" {
		d, err := parseRange(v)
		if err != nil {
			return from, to, "", err
		}
		from = to.Add(-d)
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return from, to, "", fmt.Errorf("%s=%q is not an RFC 3339 time such as 2026-11-22T13:00:00Z", p.name, v)
			}
			*p.t = t.UTC()
		}
	}
	if !from.Before(to) {
		return from, to, "", fmt.Errorf("from must be before to")
	}
	if to.Sub(from) > 400*24*time.Hour {
		return from, to, "", fmt.Errorf("a range is at most 400 days")
	}
	gran = q.Get("granularity")
	switch gran {
	case "":
		gran = "day"
		if to.Sub(from) <= 48*time.Hour {
			gran = "hour"
		}
	case "hour":
		if to.Sub(from) > 31*24*time.Hour {
			return from, to, "", fmt.Errorf("hourly stats cover at most 31 days")
		}
	case "day":
	default:
		return from, to, "", fmt.Errorf("granularity %q is not hour or day", gran)
	}
	return from, to, gran, nil
}

func parseRange(v string) (time.Duration, error) {
	if len(v) >= 2 {
		n, err := strconv.Atoi(v[:len(v)-1])
		if err == nil && n > 0 {
			switch v[len(v)-1] {
			case 'h':
				return time.Duration(n) * time.Hour, nil
			case 'd':
				return time.Duration(n) * 24 * time.Hour, nil
			}
		}
	}
	return 0, fmt.Errorf("range %q is not like 24h or 7d", v)
}

// LinkJSON is a link as the API shows it, and as the UI's links page
// shows the one just created: the link and its short URLs.
type LinkJSON struct {
	store.Link
	ShortURL string `json:"short_url"`
	AliasURL string `json:"alias_url,omitempty"`
}

// Show returns l with its short URLs on shortBase, an origin without a
// trailing slash, e.g. "https://sho.rt".
func Show(shortBase string, l store.Link) LinkJSON {
	j := LinkJSON{Link: l, ShortURL: shortBase + "/" + l.Code}
	if l.Alias != "" {
		j.AliasURL = shortBase + "/" + l.Alias
	}
	return j
}
