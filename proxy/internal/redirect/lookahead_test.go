package redirect

import (
	"context"
	"strings"
	"testing"
)

// TestTakedownWhileReplicaBehind: a link cached by the proxy is disabled
// on the primary while the proxy's replica cannot show it: its replay is
// paused (it lags, and says so), or it receives no WAL at all (its replay
// lag then reads zero, and nothing in the replica tells). Either way the
// proxy stops redirecting the link and answers 410, from the primary's
// change feed; once the replica has caught up the link is no longer
// pending (asked of the primary). Before the look-ahead, the link kept redirecting until
// the replica replayed the change, for as long as it did not (CI,
// 2026-12-03: TestSixteenProxies waited ten minutes for one proxy).
func TestTakedownWhileReplicaBehind(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stop, start []string
		stopped     string // true once stop has taken effect
	}{
		{"replay paused", []string{`SELECT pg_wal_replay_pause()`}, []string{`SELECT pg_wal_replay_resume()`},
			`SELECT pg_get_wal_replay_pause_state() = 'paused'`},
		{"receiving nothing",
			[]string{`ALTER SYSTEM SET primary_conninfo = ''`, `SELECT pg_reload_conf()`},
			[]string{`ALTER SYSTEM SET primary_conninfo = :'conninfo'`, `SELECT pg_reload_conf()`},
			`SELECT count(*) = 0 FROM pg_stat_wal_receiver`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, setupOpts{})
			ctx := context.Background()
			conn := e.replicaConn("postgres")
			var conninfo string
			if err := conn.QueryRow(ctx, `SHOW primary_conninfo`).Scan(&conninfo); err != nil {
				t.Fatal(err)
			}
			id := e.createLink("https://example.com/to-take-down", 302, false)
			e.waitReplay()
			path := "/" + e.code(id)
			if resp := e.get(path); resp.StatusCode() != 302 {
				t.Fatalf("before: %d", resp.StatusCode())
			}
			for _, q := range tc.stop {
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			waitFor(t, tc.stopped, func() bool {
				var ok bool
				return conn.QueryRow(ctx, tc.stopped).Scan(&ok) == nil && ok
			})
			if _, err := e.pdb.Exec(ctx, `UPDATE links SET disabled = true WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
			took := waitFor(t, "410 for the link disabled on the primary", func() bool { return e.get(path).StatusCode() != 302 })
			if resp := e.get(path); resp.StatusCode() != 410 {
				t.Fatalf("disabled while the replica is behind: %d, want 410", resp.StatusCode())
			}
			var replayed bool
			if err := e.replicaConn("shortfleet").QueryRow(ctx, `SELECT count(*) = 1 FROM links WHERE id = $1 AND disabled`, id).Scan(&replayed); err != nil || replayed {
				t.Fatalf("the replica has the change already (%v, %v): nothing tested", replayed, err)
			}
			t.Logf("410 %s after the change, the replica still showing the link enabled", took)
			if st := e.resolver.Stats(); st.AheadEvictions == 0 {
				t.Fatalf("stats %+v: no eviction from the primary's feed", st)
			}

			for _, q := range tc.start {
				// ALTER SYSTEM takes no parameter: the value is quoted here.
				q = strings.ReplaceAll(q, ":'conninfo'", "'"+strings.ReplaceAll(conninfo, "'", "''")+"'")
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			e.waitReplay()
			waitFor(t, "the replica's feed to pass the change", func() bool { return e.resolver.Stats().Pending == 0 })
			if resp := e.get(path); resp.StatusCode() != 410 {
				t.Fatalf("after the replica caught up: %d, want 410", resp.StatusCode())
			}
		})
	}
}
