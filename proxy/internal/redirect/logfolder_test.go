package redirect

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"shortfleet/logfmt"
	"shortfleet/proxy/internal/disktest"
)

// TestLogFolderUnusableAtStartup starts the handler on a log folder that
// cannot be opened, through the access log main uses: redirects are still
// answered, every record is counted as dropped, the drops are logged at
// most once a second, and once the folder is usable again the log opens by
// itself and keeps every request that follows.
func TestLogFolderUnusableAtStartup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T) (dir string, mend func())
	}{
		{"unwritable", func(t *testing.T) (string, func()) {
			dir := t.TempDir()
			return dir, disktest.Unwritable(t, dir)
		}},
		{"full", func(t *testing.T) (string, func()) {
			dir := disktest.Small(t, "256k")
			// An acknowledged segment: opening the folder rewrites the
			// acknowledgements, which a full disk refuses.
			seedAcknowledged(t, dir)
			return dir, disktest.Fill(t, dir)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, mend := tc.spoil(t)
			if w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "proxy-t"}, quiet); err == nil {
				w.Close()
				t.Fatal("the log writer opens the folder: the test would not exercise a failed start-up")
			}
			var logs lockedBuffer
			e := setup(t, setupOpts{logDir: dir, logRetry: 10 * time.Millisecond, logLogger: slog.New(slog.NewTextHandler(&logs, nil))})
			start := time.Now()
			if e.logw.Opened() {
				t.Fatal("log opened on a spoiled folder")
			}
			const before, after = 300, 40
			requests := []struct {
				path   string
				status int
			}{
				{"/" + e.code(e.ids["302"]), 302},
				{"/" + e.code(e.ids["disabled"]), 410},
				{"/nothing.here", 404},
			}
			send := func(n int) {
				for i := range n {
					r := requests[i%len(requests)]
					if got := e.get(r.path).StatusCode(); got != r.status {
						t.Fatalf("%s: %d, want %d", r.path, got, r.status)
					}
				}
			}
			send(before)
			if st := e.logw.Stats(); st.Dropped != before || st.Written != 0 {
				t.Fatalf("before the folder opens: dropped %d, written %d; want %d, 0", st.Dropped, st.Written, before)
			}
			waitFor(t, "drops logged", func() bool { return strings.Contains(logs.String(), "access log records dropped") })

			mend()
			waitFor(t, "log folder opened", e.logw.Opened)
			send(after)
			err := e.logw.Close()
			elapsed := time.Since(start)
			if want := fmt.Sprintf("dropped %d records", before); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("close: %v, want it to report %q", err, want)
			}
			if st := e.logw.Stats(); st.Dropped != before || st.Written != after {
				t.Fatalf("after the folder opened: dropped %d, written %d; want %d, %d", st.Dropped, st.Written, before, after)
			}
			var kept int
			for _, r := range readRecords(t, dir) {
				if r.Path != seedPath {
					kept++
				}
			}
			if kept != after {
				t.Fatalf("%d records kept after the folder opened, want %d", kept, after)
			}
			if n, most := strings.Count(logs.String(), "access log records dropped"), 1+int(elapsed/time.Second); n > most {
				t.Fatalf("drops logged %d times in %s, want at most once a second\n%s", n, elapsed, logs.String())
			}
			if !strings.Contains(logs.String(), "logging resumed") {
				t.Fatalf("resumption not logged:\n%s", logs.String())
			}
		})
	}
}

const seedPath = "/seed"

// seedAcknowledged writes one sealed segment to dir and acknowledges it as
// ingested.
func seedAcknowledged(t *testing.T, dir string) {
	t.Helper()
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "proxy-t"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	w.Append(&logfmt.Record{Time: 1, Status: 302, Path: []byte(seedPath)})
	w.Rotate()
	var names []string
	for _, p := range w.Pending() {
		names = append(names, p.Name)
	}
	if err := w.MarkIngested(names); err != nil || len(names) != 1 {
		t.Fatalf("acknowledge %v: %v", names, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
