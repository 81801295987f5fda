// Package accesslog opens the proxy's access log and keeps trying while it
// cannot. Opening a log folder writes to it (the start-up repair and the
// rewrite of the ingest acknowledgements), so a folder that is unwritable or
// full fails to open; the proxy must answer redirects all the same. Until
// the folder opens, every record is counted as dropped, the drops are logged
// at most once a second, and the folder is tried again every RetryInterval.
// Once it is open, the logfmt.Writer handles a disk that fills or fails
// later in the same way.
package accesslog

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"shortfleet/logfmt"
)

// Config says where the log is and how often a folder that failed to open
// is tried again.
type Config struct {
	// Writer configures the log writer once the folder opens.
	Writer logfmt.WriterConfig
	// RetryInterval is how often a folder that failed to open is tried
	// again (default 5s).
	RetryInterval time.Duration
}

// ErrNotOpen is returned by MarkIngested while the log folder has not
// opened.
var ErrNotOpen = errors.New("access log folder not open")

// ErrOff is returned by MarkIngested of a nil Log: logging is off.
var ErrOff = errors.New("logging is off")

// Log is the proxy's access log: a logfmt.Writer once its folder has
// opened, a counter of dropped records until then. It is safe for
// concurrent use. A nil *Log is logging turned off (the proxy's -no-log):
// it never opens, counts nothing, holds no segments and refuses
// acknowledgements with ErrOff, so the metrics and the admin API read it
// as they read any other.
type Log struct {
	cfg    Config
	logger *slog.Logger

	w          atomic.Pointer[logfmt.Writer] // nil until the folder opens
	dropped    atomic.Uint64                 // records handed over before it opened
	openErrors atomic.Uint64                 // failed attempts to open it

	stop      chan struct{}
	done      chan struct{} // closed when no more attempts will be made
	closeOnce sync.Once

	// Owned by the retry goroutine.
	lastDropLog time.Time
	dropsLogged uint64
}

// Open opens the log folder, or, if it cannot, returns a Log that drops and
// counts records while it tries again in the background. It fails only for
// a configuration that can never work.
func Open(cfg Config, logger *slog.Logger) (*Log, error) {
	if cfg.Writer.Proxy == "" {
		return nil, errors.New("access log needs a proxy id")
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	l := &Log{cfg: cfg, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	err := l.tryOpen()
	if err == nil {
		close(l.done)
		return l, nil
	}
	logger.Error("access log folder cannot be opened; answering without logging, records are dropped until it opens",
		"dir", cfg.Writer.Dir, "err", err, "retry_every", cfg.RetryInterval)
	go l.retry(err)
	return l, nil
}

func (l *Log) tryOpen() error {
	w, err := logfmt.NewWriter(l.cfg.Writer, l.logger)
	if err != nil {
		l.openErrors.Add(1)
		return err
	}
	l.w.Store(w)
	return nil
}

func (l *Log) retry(err error) {
	defer close(l.done)
	retry := time.NewTicker(l.cfg.RetryInterval)
	defer retry.Stop()
	every := time.NewTicker(time.Second)
	defer every.Stop()
	for {
		select {
		case <-l.stop:
			l.logDrops(err)
			return
		case <-every.C:
			l.logDrops(err)
		case <-retry.C:
			if err = l.tryOpen(); err == nil {
				l.logger.Info("access log folder opened; logging resumed", "dir", l.cfg.Writer.Dir,
					"dropped_while_closed", l.dropped.Load(), "attempts", l.openErrors.Load()+1)
				return
			}
		}
	}
}

// logDrops logs the records dropped since the last time, at most once a
// second.
func (l *Log) logDrops(err error) {
	d := l.dropped.Load()
	if d == l.dropsLogged || time.Since(l.lastDropLog) < time.Second {
		return
	}
	l.logger.Error("access log records dropped: log folder cannot be opened", "dropped_total", d,
		"since_last", d-l.dropsLogged, "dir", l.cfg.Writer.Dir, "err", err)
	l.dropsLogged, l.lastDropLog = d, time.Now()
}

// Append logs a record, or counts it as dropped while the folder has not
// opened. It copies everything it keeps from r and never waits for the
// disk.
func (l *Log) Append(r *logfmt.Record) {
	if l == nil {
		return
	}
	if w := l.w.Load(); w != nil {
		w.Append(r)
		return
	}
	l.dropped.Add(1)
}

// Opened reports whether the log folder has opened.
func (l *Log) Opened() bool { return l != nil && l.w.Load() != nil }

// Stats returns the writer's counters, with the records dropped before the
// folder opened counted as appended and dropped, and failed attempts to
// open it as write errors.
func (l *Log) Stats() logfmt.WriterStats {
	var st logfmt.WriterStats
	if l == nil {
		return st
	}
	if w := l.w.Load(); w != nil {
		st = w.Stats()
	}
	d := l.dropped.Load()
	st.Appended += d
	st.Dropped += d
	st.WriteErrors += l.openErrors.Load()
	return st
}

// Pending returns the sealed segments not yet acknowledged as ingested;
// none while the folder has not opened.
func (l *Log) Pending() []logfmt.Entry {
	if l == nil {
		return nil
	}
	if w := l.w.Load(); w != nil {
		return w.Pending()
	}
	return nil
}

// MarkIngested records acknowledged segments; ErrNotOpen while the folder
// has not opened (the mapreduce job acknowledges again on its next run).
func (l *Log) MarkIngested(names []string) error {
	if l == nil {
		return ErrOff
	}
	if w := l.w.Load(); w != nil {
		return w.MarkIngested(names)
	}
	return ErrNotOpen
}

// SegmentCounts returns how many sealed segments are on disk and how many
// are pending; zero while the folder has not opened.
func (l *Log) SegmentCounts() (onDisk, pending int) {
	if l == nil {
		return 0, 0
	}
	if w := l.w.Load(); w != nil {
		return w.SegmentCounts()
	}
	return 0, 0
}

// Close stops trying to open the folder and seals everything logged.
// Records appended after Close are dropped. It reports drops, as
// logfmt.Writer.Close does.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	var err error
	if w := l.w.Load(); w != nil {
		err = w.Close()
	}
	if d := l.dropped.Load(); d > 0 {
		err = errors.Join(err, fmt.Errorf("access log dropped %d records while its folder could not be opened", d))
	}
	return err
}
