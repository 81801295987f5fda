package job

import (
	"context"
	"testing"
	"time"
)

// TestMaxClicksStopsLink: the run whose commit brings a link's clicks to
// its max_clicks disables it, with the reason, through the change feed;
// not a run before, and not one later (at most one run late). Clicks the
// proxies answered before they saw the change are still counted.
func TestMaxClicksStopsLink(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	var user, capped, free, roomy int64
	if err := db.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ('cap@example.com', 'x') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		id  *int64
		max *int64
	}{{&capped, ptr(int64(5))}, {&free, nil}, {&roomy, ptr(int64(100))}} {
		if err := db.QueryRow(ctx, `INSERT INTO links (user_id, target, max_clicks) VALUES ($1, 'https://example.com/', $2) RETURNING id`,
			user, l.max).Scan(l.id); err != nil {
			t.Fatal(err)
		}
	}
	state := func(id int64) (disabled bool, reason string, feed int) {
		t.Helper()
		if err := db.QueryRow(ctx, `SELECT disabled, coalesce(stop_reason, ''), (SELECT count(*) FROM link_changes WHERE link_id = $1)
			FROM links WHERE id = $1`, id).Scan(&disabled, &reason, &feed); err != nil {
			t.Fatal(err)
		}
		return
	}
	a := newProxyLogs(t, "proxy-a")
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL}, Partitions: 2})

	a.write(nil, clicks(4, capped, t0, true)...) // bots count as clicks
	a.write(nil, clicks(4, free, t0, false)...)
	if _, err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if d, r, f := state(capped); d || r != "" || f != 0 {
		t.Fatalf("4 of 5 clicks: disabled %v, reason %q, %d feed rows", d, r, f)
	}
	a.write(nil, clicks(1, capped, t0.Add(time.Hour), false)...)
	a.write(nil, clicks(1, roomy, t0, false)...)
	if _, err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if d, r, f := state(capped); !d || r != "max_clicks" || f != 1 {
		t.Fatalf("5 of 5 clicks, the run that counted them: disabled %v, reason %q, %d feed rows; want true, max_clicks, 1", d, r, f)
	}
	for _, id := range []int64{free, roomy} {
		if d, _, _ := state(id); d {
			t.Fatalf("link %d disabled", id)
		}
	}
	// Answered before the proxies saw the change: counted, nothing else.
	a.write(nil, clicks(2, capped, t0.Add(2*time.Hour), false)...)
	if res, err := j.Run(ctx); err != nil || res.Clicks != 2 {
		t.Fatalf("late clicks: %+v, %v", res, err)
	}
	if d, r, f := state(capped); !d || r != "max_clicks" || f != 1 {
		t.Fatalf("after late clicks: disabled %v, reason %q, %d feed rows", d, r, f)
	}
}

func ptr[T any](v T) *T { return &v }
