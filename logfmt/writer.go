package logfmt

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// WriterConfig says where and how often a Writer writes.
type WriterConfig struct {
	// Dir is the log folder: segments and the manifest live in it.
	Dir string
	// Proxy is the id of the proxy writing, kept in every segment.
	Proxy string
	// FlushRows cuts a batch after this many rows (default 4096).
	FlushRows int
	// FlushInterval cuts a batch at least this often (default 200ms): after
	// a crash at most this much is lost.
	FlushInterval time.Duration
	// SealBytes seals a segment once it is this large (default 64 MiB).
	SealBytes int64
	// SealAge seals a segment once it is this old (default 1 minute).
	SealAge time.Duration
	// QueueBatches is how many cut batches may wait for the disk before
	// new ones are dropped and counted (default 64).
	QueueBatches int
	// Retention deletes sealed segments whose newest record is older than
	// this; zero keeps them forever. Proxies default to 365 days.
	Retention time.Duration
}

func (c *WriterConfig) defaults() {
	if c.FlushRows <= 0 {
		c.FlushRows = 4096
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.SealBytes <= 0 {
		c.SealBytes = 64 << 20
	}
	if c.SealAge <= 0 {
		c.SealAge = time.Minute
	}
	if c.QueueBatches <= 0 {
		c.QueueBatches = 64
	}
}

// WriterStats counts what a Writer did.
type WriterStats struct {
	Appended    uint64 // records handed to Append (counted as batches are cut)
	Written     uint64 // records written to segments
	Dropped     uint64 // records lost: queue full, disk full or unwritable
	Recovered   uint64 // records saved from torn segments at start-up or after an error
	Sealed      uint64 // segments sealed
	Bytes       uint64 // bytes written to open segments (uncompressed)
	SealedBytes uint64 // bytes of the segments sealed (compressed)
	Retained    uint64 // segments deleted by retention
	WriteErrors uint64 // failed writes, seals and manifest appends
}

// Writer appends request records to Arrow IPC segments in a log folder.
//
// Append is safe for concurrent use and never waits for the disk: it adds
// the record to in-memory builders and, every FlushRows rows, cuts a batch
// that a background goroutine compresses and writes. The builders are
// sharded: an Append takes the first shard no other Append holds, so
// concurrent Appends do not queue on one lock. Records from one goroutine
// appended one after another stay in order when nothing else appends (an
// Append waits out the background goroutine's cut of its shard rather
// than fill another); concurrent ones may land in different batches. The
// goroutine also cuts a batch every FlushInterval, seals segments by size
// or age, and after an error recovers what reached the disk. Close seals
// everything.
type Writer struct {
	cfg    WriterConfig
	logger *slog.Logger
	schema *arrow.Schema
	alloc  *poolAllocator
	// sealAlloc serves sealing, whose buffers are filled whole before
	// they are written (see poolAllocator.noZero), so it skips zeroing.
	sealAlloc *poolAllocator

	shards []shard
	next   atomic.Uint32 // the shard to wait for when every one is held

	closeStarted atomic.Bool

	spareMu sync.Mutex
	spare   []*columns // column sets written and ready for reuse

	queue   chan *columns
	closing chan []*columns
	rotate  chan chan struct{}
	done    chan struct{}

	appended, written, dropped, recovered, sealed, writeErrors atomic.Uint64
	bytes, sealedBytes, retained                               atomic.Uint64

	idxMu        sync.Mutex // guards pending and sealedOnDisk
	pending      []Entry
	sealedOnDisk int

	// Owned by the background goroutine.
	seg         *openSegment
	needRepair  bool
	lastDropLog time.Time
	dropsLogged uint64
}

// NewWriter opens a log folder for writing, first repairing what a crash
// left: the torn tail of an open segment is cut at its last whole batch and
// sealed, and sealed segments missing from the manifest are entered.
func NewWriter(cfg WriterConfig, logger *slog.Logger) (*Writer, error) {
	cfg.defaults()
	if cfg.Proxy == "" {
		return nil, errors.New("log writer needs a proxy id")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log folder: %w", err)
	}
	w := &Writer{
		cfg:       cfg,
		logger:    logger,
		schema:    Schema(cfg.Proxy),
		alloc:     &poolAllocator{},
		sealAlloc: &poolAllocator{noZero: true},
		queue:     make(chan *columns, cfg.QueueBatches),
		closing:   make(chan []*columns),
		rotate:    make(chan chan struct{}),
		done:      make(chan struct{}),
	}
	n, err := Repair(cfg.Dir, logger)
	w.recovered.Add(uint64(n))
	if err != nil {
		return nil, err
	}
	if err := w.loadIndex(); err != nil {
		return nil, fmt.Errorf("index log folder: %w", err)
	}
	w.shards = make([]shard, max(2, runtime.GOMAXPROCS(0)))
	for i := range w.shards {
		w.shards[i].cur = w.newColumns()
	}
	go w.loop()
	return w, nil
}

// shard is one set of builders that Appends fill, under its own lock.
type shard struct {
	mu     sync.Mutex // guards cur and closed
	cur    *columns
	closed bool
	// cuts is odd while the background goroutine wants or holds mu to
	// cut the shard's batch; it counts one up before and one after.
	cuts atomic.Uint32
	_    [64]byte // keeps shards' locks off each other's cache lines
}

// lockShard locks and returns the first shard no other Append holds, or,
// when every one is held, waits for one of them in turn. A shard the
// background goroutine's cut held at any moment of the attempt is waited
// for, not passed: the cut lets go at once, and filling another shard
// instead would put this goroutine's record ahead of the ones it appended
// before.
func (w *Writer) lockShard() *shard {
	for i := range w.shards {
		s := &w.shards[i]
		cuts := s.cuts.Load()
		if s.mu.TryLock() {
			return s
		}
		if cuts&1 == 1 || s.cuts.Load() != cuts {
			s.mu.Lock()
			return s
		}
	}
	s := &w.shards[int(w.next.Add(1))%len(w.shards)]
	s.mu.Lock()
	return s
}

// Append adds a record. It copies everything it keeps from r.
func (w *Writer) Append(r *Record) {
	s := w.lockShard()
	if s.closed {
		s.mu.Unlock()
		w.appended.Add(1)
		w.dropped.Add(1)
		return
	}
	s.cur.append(w.cfg.Proxy, r)
	if s.cur.rows >= w.cfg.FlushRows {
		w.enqueueLocked(s)
	}
	s.mu.Unlock()
}

// newColumns is a spare column set, or a new one.
func (w *Writer) newColumns() *columns {
	w.spareMu.Lock()
	defer w.spareMu.Unlock()
	if n := len(w.spare); n > 0 {
		c := w.spare[n-1]
		w.spare = w.spare[:n-1]
		return c
	}
	c := &columns{}
	c.reset()
	return c
}

// cutLocked takes the rows appended to s so far as a batch; nil when there
// are none.
func (w *Writer) cutLocked(s *shard) *columns {
	if s.cur.rows == 0 {
		return nil
	}
	c := s.cur
	s.cur = w.newColumns()
	w.appended.Add(uint64(c.rows))
	return c
}

// recycle returns a written batch's columns for reuse.
func (w *Writer) recycle(c *columns) {
	c.reset()
	w.spareMu.Lock()
	if len(w.spare) < 8+len(w.shards) {
		w.spare = append(w.spare, c)
	}
	w.spareMu.Unlock()
}

// enqueueLocked hands s's cut batch to the background goroutine, or drops
// it if the disk has fallen that far behind. Sending under s.mu keeps the
// shard's batches in the order they were cut.
func (w *Writer) enqueueLocked(s *shard) {
	c := w.cutLocked(s)
	if c == nil {
		return
	}
	select {
	case w.queue <- c:
	default:
		w.dropped.Add(uint64(c.rows))
		w.recycle(c)
	}
}

// cutAll hands every shard's rows to the background goroutine.
func (w *Writer) cutAll() {
	for i := range w.shards {
		s := &w.shards[i]
		s.cuts.Add(1)
		s.mu.Lock()
		w.enqueueLocked(s)
		s.mu.Unlock()
		s.cuts.Add(1)
	}
}

// Close seals all buffered records into a final segment and stops the
// background goroutine. Records appended after Close are dropped.
func (w *Writer) Close() error {
	if !w.closeStarted.CompareAndSwap(false, true) {
		<-w.done
		return nil
	}
	var rest []*columns
	for i := range w.shards {
		s := &w.shards[i]
		s.mu.Lock()
		s.closed = true
		if c := w.cutLocked(s); c != nil {
			rest = append(rest, c)
		}
		s.mu.Unlock()
	}
	w.closing <- rest
	<-w.done
	if n := w.dropped.Load(); n > 0 {
		return fmt.Errorf("log writer dropped %d records", n)
	}
	return nil
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{
		Appended:    w.appended.Load(),
		Written:     w.written.Load(),
		Dropped:     w.dropped.Load(),
		Recovered:   w.recovered.Load(),
		Sealed:      w.sealed.Load(),
		Bytes:       w.bytes.Load(),
		SealedBytes: w.sealedBytes.Load(),
		Retained:    w.retained.Load(),
		WriteErrors: w.writeErrors.Load(),
	}
}

// Dir is the log folder.
func (w *Writer) Dir() string { return w.cfg.Dir }

func (w *Writer) loop() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.FlushInterval)
	defer tick.Stop()
	retain := time.NewTicker(time.Hour)
	defer retain.Stop()
	w.retain(time.Now())
	for {
		select {
		case <-retain.C:
			w.retain(time.Now())
		case reply := <-w.rotate:
			w.cutAll()
			w.drain()
			if w.seg != nil {
				w.seal()
			}
			close(reply)
		case rec := <-w.queue:
			w.write(rec)
		case <-tick.C:
			w.cutAll()
			w.drain()
			if w.seg != nil && time.Since(w.seg.opened) >= w.cfg.SealAge {
				w.seal()
			}
			w.maybeRepair()
			w.logDrops()
		case rest := <-w.closing:
			w.drain()
			for _, c := range rest {
				w.write(c)
			}
			if w.seg != nil {
				w.seal()
			}
			w.maybeRepair()
			w.logDrops()
			return
		}
	}
}

// drain writes every batch already queued.
func (w *Writer) drain() {
	for {
		select {
		case rec := <-w.queue:
			w.write(rec)
		default:
			return
		}
	}
}

// logDrops logs lost records at most once a second.
func (w *Writer) logDrops() {
	d := w.dropped.Load()
	if d == w.dropsLogged || time.Since(w.lastDropLog) < time.Second {
		return
	}
	w.logger.Error("access log records dropped", "dropped_total", d, "since_last", d-w.dropsLogged, "dir", w.cfg.Dir)
	w.dropsLogged, w.lastDropLog = d, time.Now()
}

// openSegment is the segment being written: uncompressed batches, each
// written as it is cut, so a crash loses at most a flush interval; sealing
// compacts them (see sealFile).
type openSegment struct {
	w      *Writer
	name   string
	path   string // the .open file
	f      *os.File
	n      int64
	ipc    *ipc.Writer
	rows   int64
	opened time.Time
}

func (s *openSegment) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.n += int64(n)
	s.w.bytes.Add(uint64(n))
	return n, err
}

func (w *Writer) open() error {
	t := time.Now()
	var name string
	for {
		name = segmentName(t)
		_, err1 := os.Stat(filepath.Join(w.cfg.Dir, name))
		_, err2 := os.Stat(filepath.Join(w.cfg.Dir, name+openSuffix))
		if os.IsNotExist(err1) && os.IsNotExist(err2) {
			break
		}
		t = t.Add(time.Nanosecond)
	}
	path := filepath.Join(w.cfg.Dir, name+openSuffix)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	s := &openSegment{w: w, name: name, path: path, f: f, opened: t}
	s.ipc = ipc.NewWriter(s, ipc.WithSchema(w.schema), ipc.WithAllocator(w.alloc))
	w.seg = s
	return nil
}

func (w *Writer) write(c *columns) {
	defer w.recycle(c)
	n := int64(c.rows)
	if w.seg == nil {
		if err := w.open(); err != nil {
			w.fail(err, n)
			return
		}
	}
	s := w.seg
	rec := c.record(w.schema)
	err := s.ipc.Write(rec)
	rec.Release()
	if err != nil {
		w.fail(fmt.Errorf("write batch to %s: %w", s.name, err), n)
		w.abandon()
		return
	}
	s.rows += n
	w.written.Add(uint64(n))
	if s.n >= w.cfg.SealBytes {
		w.seal()
	}
}

// fail counts a failed write and the records it lost.
func (w *Writer) fail(err error, lost int64) {
	w.writeErrors.Add(1)
	w.dropped.Add(uint64(lost))
	if time.Since(w.lastDropLog) >= time.Second {
		w.logger.Error("access log write failed", "err", err)
		w.lastDropLog = time.Now()
		w.dropsLogged = w.dropped.Load()
	}
}

// abandon gives up on the open segment after an error. What reached the
// disk stays in the .open file, which the next repair cuts at its last whole
// batch and seals.
func (w *Writer) abandon() {
	w.seg.f.Close()
	w.seg = nil
	w.needRepair = true
}

func (w *Writer) maybeRepair() {
	if !w.needRepair {
		return
	}
	skip := ""
	if w.seg != nil {
		skip = filepath.Base(w.seg.path)
	}
	n, err := repair(w.cfg.Dir, w.logger, skip)
	w.recovered.Add(uint64(n))
	// What the repair entered in the manifest is pending like any segment
	// sealed here: without this it would reach GET /segments, and so the
	// stats, only at the next restart. Entered even when the repair
	// partly failed, since what it did enter is final.
	if ierr := w.reindex(); ierr != nil {
		err = errors.Join(err, fmt.Errorf("index log folder after repair: %w", ierr))
	}
	if err != nil {
		w.writeErrors.Add(1)
		return // still failing: try again next tick
	}
	w.needRepair = false
}

// seal finishes the open segment: end-of-stream marker, then compaction
// into the sealed file (large compressed batches, fsync, atomic rename,
// fsync of the folder), a manifest line, and removal of the open file.
// On failure the open file stays, and the next repair seals it.
func (w *Writer) seal() {
	s := w.seg
	w.seg = nil
	err := s.ipc.Close()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		w.fail(fmt.Errorf("seal segment %s: %w", s.name, err), 0)
		w.needRepair = true
		return
	}
	e, err := sealFile(w.cfg.Dir, s.path, s.name, w.sealAlloc)
	if err != nil {
		w.fail(fmt.Errorf("seal segment %s: %w", s.name, err), 0)
		w.needRepair = true
		return
	}
	if err := appendManifest(w.cfg.Dir, e); err != nil {
		// The sealed file is complete; the repair enters it later.
		w.fail(err, 0)
		w.needRepair = true
		return
	}
	os.Remove(s.path)
	w.sealed.Add(1)
	w.sealedBytes.Add(uint64(e.Bytes))
	w.idxMu.Lock()
	w.pending = append(w.pending, e)
	w.sealedOnDisk++
	w.idxMu.Unlock()
}

// Rotate seals the open segment now, with everything appended before the
// call. It returns once the segment is sealed (or the writer is closed).
func (w *Writer) Rotate() {
	reply := make(chan struct{})
	select {
	case w.rotate <- reply:
		<-reply
	case <-w.done:
	}
}
