package accesslog

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"shortfleet/logfmt"
	"shortfleet/proxy/internal/disktest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestClosedFolder: while the folder cannot be opened, the Log answers
// for the writer (nothing pending, acknowledgements refused, every record
// dropped and counted); Close stops the retries and reports the drops.
func TestClosedFolder(t *testing.T) {
	dir := t.TempDir()
	disktest.Unwritable(t, dir)
	l, err := Open(Config{Writer: logfmt.WriterConfig{Dir: dir, Proxy: "p"}, RetryInterval: time.Millisecond}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for range 7 {
		l.Append(&logfmt.Record{Time: 1, Status: 302})
	}
	if l.Opened() || l.Pending() != nil || !errors.Is(l.MarkIngested([]string{"x"}), ErrNotOpen) {
		t.Fatalf("opened %v, pending %v on an unwritable folder", l.Opened(), l.Pending())
	}
	if onDisk, pending := l.SegmentCounts(); onDisk != 0 || pending != 0 {
		t.Fatalf("segment counts %d, %d", onDisk, pending)
	}
	st := l.Stats()
	if st.Appended != 7 || st.Dropped != 7 || st.Written != 0 || st.WriteErrors == 0 {
		t.Fatalf("stats %+v: want 7 appended and dropped, failed opens counted", st)
	}
	if err := l.Close(); err == nil {
		t.Fatal("close reported no drops")
	}
	l.Append(&logfmt.Record{Time: 2, Status: 302})
	if l.Opened() || l.Stats().Dropped != 8 {
		t.Fatalf("after close: opened %v, dropped %d, want closed and 8", l.Opened(), l.Stats().Dropped)
	}
}

func TestNeedsProxyID(t *testing.T) {
	if _, err := Open(Config{Writer: logfmt.WriterConfig{Dir: t.TempDir()}}, quiet); err == nil {
		t.Fatal("opened without a proxy id")
	}
}

// TestOff: a nil Log is logging turned off (-no-log): never open, nothing
// counted or pending, acknowledgements refused with ErrOff, and Append
// and Close do nothing.
func TestOff(t *testing.T) {
	var l *Log
	l.Append(&logfmt.Record{Time: 1, Status: 302})
	if l.Opened() || l.Pending() != nil || l.Stats() != (logfmt.WriterStats{}) {
		t.Fatalf("off: opened %v, pending %v, stats %+v", l.Opened(), l.Pending(), l.Stats())
	}
	if onDisk, pending := l.SegmentCounts(); onDisk != 0 || pending != 0 {
		t.Fatalf("off: %d segments on disk, %d pending", onDisk, pending)
	}
	if err := l.MarkIngested([]string{"x"}); !errors.Is(err, ErrOff) || err.Error() != "logging is off" {
		t.Fatalf("off: MarkIngested %v, want ErrOff", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("off: Close %v", err)
	}
}
