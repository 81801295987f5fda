package job

import (
	"context"
	"testing"
	"time"
)

// TestDeletedAccountStatsStayDeleted: clicks a proxy logged before an
// account's deletion reached it (counted by the runs after the deletion)
// bring none of the deleted links' stats back, neither in a run nor in a
// recompute of the day; another account's link is counted as ever, and
// the run counts only what it stored.
func TestDeletedAccountStatsStayDeleted(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	var gone, stays, kept, deleted int64
	for _, u := range []struct {
		email string
		id    *int64
	}{{"gone@example.com", &gone}, {"stays@example.com", &stays}} {
		if err := db.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ($1, 'x') RETURNING id`, u.email).Scan(u.id); err != nil {
			t.Fatal(err)
		}
	}
	for user, id := range map[int64]*int64{stays: &kept, gone: &deleted} {
		if err := db.QueryRow(ctx, `INSERT INTO links (user_id, target) VALUES ($1, 'https://example.com/') RETURNING id`, user).Scan(id); err != nil {
			t.Fatal(err)
		}
	}
	a := newProxyLogs(t, "proxy-a")
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL}, Partitions: 2})
	a.write(nil, clicks(3, kept, t0, false)...)
	a.write(nil, clicks(4, deleted, t0, false)...)
	if res, err := j.Run(ctx); err != nil || res.Clicks != 7 {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	rows := func(link int64) (n int) {
		t.Helper()
		if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM link_daily WHERE link_id = $1) + (SELECT count(*) FROM clicks_hourly WHERE link_id = $1)`,
			link).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if rows(deleted) != 2 {
		t.Fatalf("before the deletion: %d stats rows of the link, want a day and an hour", rows(deleted))
	}
	// What DeleteAccount does (primary/internal/store/account.go).
	for _, q := range []string{
		`UPDATE links SET disabled = true, user_id = NULL, target = '', updated_at = now() WHERE id = $1`,
		`DELETE FROM clicks_hourly WHERE link_id = $1`,
		`DELETE FROM link_daily WHERE link_id = $1`,
	} {
		if _, err := db.Exec(ctx, q, deleted); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.Exec(ctx, `DELETE FROM users WHERE id = $1`, gone); err != nil {
		t.Fatal(err)
	}
	// Logged before the proxy heard of it, in the same day and the next.
	a.write(nil, clicks(5, deleted, t0.Add(time.Hour), false)...)
	a.write(nil, clicks(6, deleted, t0.Add(24*time.Hour), false)...)
	a.write(nil, clicks(2, kept, t0.Add(time.Hour), false)...)
	if res, err := j.Run(ctx); err != nil || res.Clicks != 2 {
		t.Fatalf("run after the deletion: %+v, %v; want the 2 clicks of the live link", res, err)
	}
	if n := rows(deleted); n != 0 {
		t.Fatalf("after the deletion a run stored %d stats rows of the deleted account's link", n)
	}
	if d := dailyRow(t, db, kept, t0); d.clicks != 5 {
		t.Fatalf("the other account's link: %d clicks, want 5", d.clicks)
	}
	if res, err := j.Recompute(ctx, t0); err != nil || res.Clicks != 5 {
		t.Fatalf("recompute: %+v, %v; want the live link's 5 clicks", res, err)
	}
	if n := rows(deleted); n != 0 {
		t.Fatalf("a recompute stored %d stats rows of the deleted account's link", n)
	}
	if d := dailyRow(t, db, kept, t0); d.clicks != 5 {
		t.Fatalf("after the recompute the other account's link: %d clicks, want 5", d.clicks)
	}
}
