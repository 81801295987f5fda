package redirect

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"shortfleet/proxy/internal/admin"
)

// TestReadyzReplicaLag pauses replay on the replica while the primary
// keeps creating links: once the lag passes the bound, /readyz says not
// ready and names the lag; cached links keep redirecting meanwhile; once
// replay resumes and catches up, /readyz says ready again. Postgres dates
// the lag by the last transaction replayed, so it is tested both on a
// replica that has replayed one and on one that has replayed none since it
// started (as after a restart), which has no date to give.
func TestReadyzReplicaLag(t *testing.T) {
	const maxLag = time.Second
	for _, tc := range []struct {
		name     string
		replayed bool
	}{
		{"transactions replayed", true},
		{"none replayed since start", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, setupOpts{maxLag: maxLag})
			if tc.replayed {
				e.createLink("https://example.com/replayed", 302, false)
				e.waitReplay()
			}
			ctx := context.Background()
			conn := e.replicaConn("postgres")
			var dated bool
			if err := conn.QueryRow(ctx, `SELECT pg_last_xact_replay_timestamp() IS NOT NULL`).Scan(&dated); err != nil || dated != tc.replayed {
				t.Fatalf("replica has a replay timestamp: %v (%v), want %v", dated, err, tc.replayed)
			}
			srv := httptest.NewServer(admin.Handler(admin.Config{
				Proxy: "proxy-t", LogDir: e.logDir, Token: "t", Segments: e.logw, Ready: e.resolver.Ready,
			}, quiet))
			defer srv.Close()
			readyz := func() (int, string) {
				t.Helper()
				resp, err := http.Get(srv.URL + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body)
			}
			if status, body := readyz(); status != 200 || body != "ready\n" {
				t.Fatalf("before the pause: %d %q", status, body)
			}
			cached := "/" + e.code(e.ids["302"])
			e.get(cached)

			if _, err := conn.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
				t.Fatal(err)
			}
			wctx, stopWrites := context.WithCancel(ctx)
			var writes sync.WaitGroup
			writes.Go(func() {
				for wctx.Err() == nil {
					e.pdb.Exec(wctx, `INSERT INTO links (user_id, target) VALUES ($1, 'https://example.com/while-paused')`, e.user)
					time.Sleep(20 * time.Millisecond)
				}
			})
			defer func() { stopWrites(); writes.Wait() }()

			var status int
			var body string
			// Until the lag passes its bound a slow poll on a loaded machine
			// may say "not polled" first; the lag is what this waits for.
			waitFor(t, "not ready while replay is paused", func() bool {
				status, body = readyz()
				return status != 200 && strings.Contains(body, "replica lags")
			})
			if status != http.StatusServiceUnavailable || !strings.Contains(body, "replica lags") || !strings.Contains(body, "bound "+maxLag.String()) {
				t.Fatalf("with replay paused: %d %q, want 503 naming the lag and its bound", status, body)
			}
			if lag := time.Duration(e.resolver.LagNS()); lag <= maxLag {
				t.Fatalf("not ready with a lag of %s, bound %s", lag, maxLag)
			}
			if resp := e.get(cached); resp.StatusCode() != 302 {
				t.Fatalf("cached link while the replica lags: %d", resp.StatusCode())
			}

			if _, err := conn.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
				t.Fatal(err)
			}
			stopWrites()
			writes.Wait()
			e.waitReplay()
			waitFor(t, "ready after replay resumed", func() bool { status, body = readyz(); return status == 200 })
			if body != "ready\n" {
				t.Fatalf("after the resume: %d %q", status, body)
			}
		})
	}
}
