// Package job is one mapreduce run: it pulls the sealed access log segments
// every proxy has and the ledger lacks, verifies them, classifies and
// aggregates their clicks (each checked segment mapped, then folded into
// per-partition totals, package aggregate), and commits the aggregates
// with the ledger rows in one transaction (README.md decision 6).
package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"shortfleet/logfmt"
	"shortfleet/logfmt/ship"
	"shortfleet/mapreduce/internal/aggregate"
	"shortfleet/mapreduce/internal/dims"
)

// Config configures runs.
type Config struct {
	// Proxies are the proxies' admin base URLs.
	Proxies []string
	// Token is the proxies' admin bearer token; New refuses an empty one.
	Token string
	// Parallel bounds concurrent segment pulls and maps (default 4).
	Parallel int
	// Partitions is the number of reduce partitions (default 8).
	Partitions int
	// HTTPTimeout bounds one request to a proxy (default 1 minute).
	HTTPTimeout time.Duration
	// Dims configures classification: GeoIP database, visitor salt.
	Dims dims.Config
	// Archive, when set, is a folder the records of every segment ingested
	// are written to as Parquet, partitioned by day.
	Archive string
	// StagePause holds the run at each stage boundary, for crash tests that
	// kill it at every stage (including inside the open transaction).
	StagePause time.Duration
}

// LockKey is the Postgres advisory lock that keeps runs one at a time
// fleet-wide.
const LockKey int64 = 0x73686f7274666c74 // "shortflt"

// ErrLocked is returned when another run holds the lock.
var ErrLocked = errors.New("another mapreduce run holds the lock")

// Job runs mapreduce runs against one primary.
type Job struct {
	cfg    Config
	logger *slog.Logger
	db     *pgxpool.Pool
	client *http.Client
	dims   *dims.Shared
	// workers are the map workers' classifiers and buffers, kept from run
	// to run: the classifiers' caches (parsed user agents above all) are
	// what makes mapping cheap, and every run sees mostly the user agents
	// the last one did. The caches are bounded, and Check drops them after
	// a Trim.
	workers chan *worker

	// Counters for /metrics.
	runs, failedRuns, lockedRuns, segments, records, clicks, quarantined atomic.Uint64
	failedSegments, unknownVersion                                       atomic.Uint64 // left pending, by why
	lastPending                                                          atomic.Int64
	lastSuccess                                                          atomic.Int64 // unix seconds
	// Durations for /metrics: of runs that held the lock, and of their
	// stages (see Stages).
	runSeconds   prometheus.Histogram
	stageSeconds *prometheus.HistogramVec
}

// timeStage records that stage took from start until now.
func (j *Job) timeStage(stage string, start time.Time) {
	j.stageSeconds.WithLabelValues(stage).Observe(time.Since(start).Seconds())
}

// New returns a Job.
func New(cfg Config, logger *slog.Logger, db *pgxpool.Pool) (*Job, error) {
	if cfg.Token == "" {
		return nil, errors.New("job: the proxies' admin token is empty")
	}
	// A commit reads the stored daily rows on a second connection while
	// the first, holding the transaction, writes the hours: with one
	// connection the read would wait for the commit forever.
	if db != nil && db.Config().MaxConns < 2 {
		return nil, fmt.Errorf("job: the database pool allows %d connection, a commit needs 2: raise pool_max_conns in the database address", db.Config().MaxConns)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 8
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = time.Minute
	}
	shared, err := dims.NewShared(cfg.Dims)
	if err != nil {
		return nil, err
	}
	j := &Job{cfg: cfg, logger: logger, db: db, client: &http.Client{Timeout: cfg.HTTPTimeout}, dims: shared,
		workers: make(chan *worker, cfg.Parallel)}
	j.runSeconds, j.stageSeconds = newDurations()
	for range cfg.Parallel {
		j.workers <- &worker{c: shared.NewClassifier()}
	}
	return j, nil
}

// worker is one map worker's classifier and the scratch it maps a
// segment into before the segment is folded into the run's totals.
type worker struct {
	c       *dims.Classifier
	scratch aggregate.Scratch
}

// Close releases the job's resources.
func (j *Job) Close() error { return j.dims.Close() }

// Result is what a run did.
type Result struct {
	RunID       int64
	Segments    int      // segments ingested
	Records     int64    // records read from them
	Clicks      int64    // clicks added to the stats
	Aggregates  int      // hourly and daily rows written
	Quarantined int      // segments set aside for good, with the reason in the ledger
	ProxiesDown []string // proxies that could not be listed; caught up next run
	Failed      []string // segments not ingested (not pulled, or not readable yet); retried next run
	// UnknownVersion is how many of Failed are of a format version this
	// build does not read: a proxy was upgraded before this host.
	UnknownVersion int
}

// segment is one sealed segment to ingest.
type segment struct {
	proxyURL string
	proxy    string
	entry    logfmt.Entry
	records  int64
	reason   string // set: quarantine with this reason
	// newer is set for a segment of a format version this build does not
	// read. It is not damage: it stays pending, neither quarantined nor
	// acknowledged, and the first run after this host's upgrade ingests it.
	newer bool
}

// Run performs one run. It returns ErrLocked, doing nothing, if another run
// holds the lock.
func (j *Job) Run(ctx context.Context) (res Result, err error) {
	start := time.Now()
	r, err := j.startRun(ctx, "run")
	if err != nil {
		return res, err
	}
	res.RunID = r.id
	defer func() {
		// Only a run brings the stats up to date, so a recompute is not
		// a last success.
		if err == nil {
			j.lastSuccess.Store(time.Now().Unix())
		}
		r.end(&res, err)
		j.runSeconds.Observe(time.Since(start).Seconds())
	}()
	conn := r.conn

	t := time.Now()
	pending, known, err := j.pending(ctx, conn.Conn(), &res)
	j.timeStage("list", t)
	if err != nil {
		return res, err
	}
	j.lastPending.Store(int64(len(pending)))
	// Segments the ledger has that a proxy still lists (an earlier
	// acknowledgement was lost) are acknowledged again.
	defer func() {
		t := time.Now()
		j.acknowledge(ctx, known)
		j.timeStage("ack", t)
	}()
	j.stage(ctx, "listed", "pending", len(pending), "known", len(known), "proxies_down", len(res.ProxiesDown))
	t = time.Now()
	totals := aggregate.NewTotals(j.cfg.Partitions)
	done := j.mapAll(ctx, pending, totals, &res)
	j.timeStage("map", t)
	j.failedSegments.Add(uint64(len(res.Failed) - res.UnknownVersion))
	j.unknownVersion.Add(uint64(res.UnknownVersion))
	j.stage(ctx, "mapped", "segments", len(done))
	// Each segment was folded into the totals as it was checked: reduce
	// has nothing left to merge.
	t = time.Now()
	reduced := totals.Partials()
	j.timeStage("reduce", t)
	j.stage(ctx, "reduced", "partitions", len(reduced))
	t = time.Now()
	err = j.commit(ctx, conn.Conn(), done, reduced, &res)
	j.timeStage("commit", t)
	if err != nil {
		return res, err
	}
	j.stage(ctx, "committed", "run", res.RunID)
	known = append(known, done...)
	j.segments.Add(uint64(res.Segments))
	j.records.Add(uint64(res.Records))
	j.clicks.Add(uint64(res.Clicks))
	j.quarantined.Add(uint64(res.Quarantined))
	return res, nil
}

// stage logs reaching a stage boundary, and holds there for StagePause.
func (j *Job) stage(ctx context.Context, name string, attrs ...any) {
	j.logger.Info("stage "+name, attrs...)
	if j.cfg.StagePause > 0 {
		select {
		case <-time.After(j.cfg.StagePause):
		case <-ctx.Done():
		}
	}
}

// pending lists every proxy's pending segments and returns those the
// ledger lacks, and those it has (known).
func (j *Job) pending(ctx context.Context, conn *pgx.Conn, res *Result) (pending, known []*segment, err error) {
	all := j.listAll(ctx, false, res)
	if len(all) == 0 {
		return nil, nil, nil
	}
	proxies := make([]string, len(all))
	names := make([]string, len(all))
	for i, s := range all {
		proxies[i], names[i] = s.proxy, s.entry.Name
	}
	rows, err := conn.Query(ctx, `SELECT s.proxy, s.name FROM ingested_segments s
		JOIN unnest($1::text[], $2::text[]) AS l(proxy, name) USING (proxy, name)`, proxies, names)
	if err != nil {
		return nil, nil, fmt.Errorf("read ledger: %w", err)
	}
	seen := map[[2]string]bool{}
	for rows.Next() {
		var p, n string
		if err := rows.Scan(&p, &n); err != nil {
			return nil, nil, fmt.Errorf("read ledger: %w", err)
		}
		seen[[2]string{p, n}] = true
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read ledger: %w", err)
	}
	for _, s := range all {
		if seen[[2]string{s.proxy, s.entry.Name}] {
			known = append(known, s)
		} else {
			pending = append(pending, s)
		}
	}
	return pending, known, nil
}

// listAll lists every proxy's segments, in parallel: the pending ones, or
// with all, every sealed one it still has.
func (j *Job) listAll(ctx context.Context, all bool, res *Result) []*segment {
	var (
		mu   sync.Mutex
		segs []*segment
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(j.cfg.Parallel)
	for _, p := range j.cfg.Proxies {
		g.Go(func() error {
			proxy, entries, err := j.list(gctx, p, all)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				j.logger.Warn("proxy unreachable; its segments wait for the next run", "proxy", p, "err", err)
				res.ProxiesDown = append(res.ProxiesDown, p)
				return nil
			}
			for _, e := range entries {
				segs = append(segs, &segment{proxyURL: p, proxy: proxy, entry: e})
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Slice(segs, func(a, b int) bool {
		if segs[a].proxy != segs[b].proxy {
			return segs[a].proxy < segs[b].proxy
		}
		return segs[a].entry.Name < segs[b].entry.Name
	})
	sort.Strings(res.ProxiesDown)
	return segs
}

// proxy is the client of the proxy whose admin listener is at base.
func (j *Job) proxy(base string) ship.Client {
	return ship.Client{BaseURL: base, Token: j.cfg.Token, HTTP: j.client}
}

func (j *Job) list(ctx context.Context, base string, all bool) (string, []logfmt.Entry, error) {
	l, skipped, err := j.proxy(base).List(ctx, all)
	if err != nil {
		return "", nil, err
	}
	for _, err := range skipped {
		j.logger.Warn("bad listing entry skipped", "proxy", l.Proxy, "err", err)
	}
	return l.Proxy, l.Segments, nil
}

// acknowledge tells each proxy which of its segments are in the ledger, so
// it stops listing them as pending. A failure only means they are listed,
// and skipped, again next run.
func (j *Job) acknowledge(ctx context.Context, segs []*segment) {
	byProxy := map[string][]string{}
	for _, s := range segs {
		byProxy[s.proxyURL] = append(byProxy[s.proxyURL], s.entry.Name)
	}
	for u, names := range byProxy {
		if err := j.proxy(u).Ack(ctx, names); err != nil {
			j.logger.Warn("acknowledging ingested segments failed; they will be listed again", "proxy", u, "segments", len(names), "err", err)
		}
	}
}

// mapAll pulls, verifies and maps every pending segment, in parallel, and
// folds each segment that passes every check into totals. It returns the
// segments to enter in the ledger: those ingested (folded whole) and those
// quarantined (not folded at all). Segments that could not be pulled,
// or are of a format version this build does not read, are left for the
// next run.
func (j *Job) mapAll(ctx context.Context, pending []*segment, totals *aggregate.Totals, res *Result) []*segment {
	var (
		mu   sync.Mutex
		done []*segment
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(j.cfg.Parallel)
	for _, s := range pending {
		g.Go(func() error {
			w := <-j.workers
			err := j.mapSegment(gctx, s, w, totals)
			j.workers <- w
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				done = append(done, s)
			case s.reason != "":
				j.logger.Error("segment quarantined", "proxy", s.proxy, "segment", s.entry.Name, "reason", s.reason)
				done = append(done, s)
			case s.newer:
				j.logger.Error("segment of a format version this build does not read; left pending until mapreduce is upgraded",
					"proxy", s.proxy, "segment", s.entry.Name, "err", err)
				res.Failed = append(res.Failed, s.proxy+"/"+s.entry.Name)
				res.UnknownVersion++
			default:
				j.logger.Warn("segment not ingested; retried next run", "proxy", s.proxy, "segment", s.entry.Name, "err", err)
				res.Failed = append(res.Failed, s.proxy+"/"+s.entry.Name)
			}
			return nil
		})
	}
	_ = g.Wait()
	return done
}

// Verify checks a segment's bytes against its manifest entry.
func Verify(data []byte, e logfmt.Entry) error {
	if int64(len(data)) != e.Bytes {
		return fmt.Errorf("%w: segment %s has %d bytes, manifest says %d", logfmt.ErrCorrupt, e.Name, len(data), e.Bytes)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != e.SHA256 {
		return fmt.Errorf("%w: segment %s checksum mismatch", logfmt.ErrCorrupt, e.Name)
	}
	return nil
}

// pull fetches a segment and verifies it. A mismatch is fetched once more
// (it may have been damaged in transit) before it counts as corrupt.
func (j *Job) pull(ctx context.Context, s *segment) ([]byte, error) {
	var err error
	for attempt := range 2 {
		var data []byte
		data, err = j.fetch(ctx, s)
		if err != nil {
			return nil, err
		}
		if err = Verify(data, s.entry); err == nil {
			return data, nil
		}
		if attempt == 0 {
			j.logger.Warn("segment failed verification; fetching it again", "proxy", s.proxy, "segment", s.entry.Name, "err", err)
		}
	}
	return nil, err
}

func (j *Job) fetch(ctx context.Context, s *segment) ([]byte, error) {
	return j.proxy(s.proxyURL).Fetch(ctx, s.entry)
}

// mapSegment pulls one segment, maps it whole into the worker's scratch
// and, once it has passed every check, folds it into totals; nothing can
// fail after that. A segment whose bytes or contents are wrong is marked
// for quarantine; one of a format version this build does not read is
// marked newer. Neither, nor a segment that could not be archived, adds
// anything to totals: not even the clicks of its batches read before the
// damage.
func (j *Job) mapSegment(ctx context.Context, s *segment, w *worker, totals *aggregate.Totals) error {
	data, err := j.pull(ctx, s)
	if err != nil {
		if errors.Is(err, logfmt.ErrCorrupt) {
			s.reason = err.Error()
		}
		return err
	}
	w.c.Check()
	records, err := w.scratch.MapSegment(data, w.c, nil)
	if err == nil && records != s.entry.Rows {
		err = fmt.Errorf("%w: segment %s has %d records, manifest says %d", logfmt.ErrCorrupt, s.entry.Name, records, s.entry.Rows)
	}
	if errors.Is(err, logfmt.ErrUnknownVersion) {
		// Its bytes are those the proxy vouched for: this build is older
		// than the proxy that wrote it, and quarantine would lose its
		// clicks for good.
		s.newer = true
		return err
	}
	if err != nil {
		s.reason = err.Error()
		return err
	}
	if j.cfg.Archive != "" {
		if err := WriteArchive(j.cfg.Archive, s.proxy, s.entry.Name, data); err != nil {
			return fmt.Errorf("archive %s: %w", s.entry.Name, err)
		}
	}
	s.records = records
	totals.Fold(&w.scratch)
	return nil
}
