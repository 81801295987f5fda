// Package links resolves codes and aliases to links for the proxy: from an
// in-process cache bounded in bytes, then the local replica, and, only for
// links created in the last moments or while the replica is down, the
// primary (README.md decision 2). A poller follows the replica: the largest
// link id it has replayed (the watermark), its replay lag, the alias map,
// and the change feed whose rows evict edited links from the cache
// (decision 4).
package links

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"

	"shortfleet/logfmt"
	sfsql "shortfleet/sql"
)

// Entry is what the proxy keeps of a link.
type Entry struct {
	ID       int64
	Target   string
	Type     uint16
	Disabled bool
	// Opts are the link's issue 21 options; nil for a plain link, which
	// keeps a plain entry small and its redirect free of any check.
	Opts *Options
}

// entryOverhead is what a cache entry costs beyond its target's bytes: the
// key, the Entry, otter's node, its share of the hash table (which doubles
// as it grows) and of the frequency sketch. Measured at 103 to 110 bytes on
// amd64 with otter v2.4; TestCacheHeapWithinBound keeps it honest.
const entryOverhead = 128

// entryWeight is the bytes a cached entry holds, for the cache's bound. The
// target string is allocated in a Go size class up to about 14% larger than
// its length, hence len/6 (and 16 for the smallest classes).
func entryWeight(e Entry) uint32 {
	n := len(e.Target)
	return uint32(n+n/6+16+entryOverhead) + e.Opts.weight()
}

// Outcome says where a lookup was answered.
type Outcome uint8

// Outcomes.
const (
	Hit     Outcome = iota // the in-process cache
	Replica                // the local replica
	Primary                // the primary (read-your-writes or replica down)
	Miss                   // looked up and not found
)

// LogValue is the outcome as the access log records it.
func (o Outcome) LogValue() string {
	switch o {
	case Hit:
		return logfmt.CacheHit
	case Replica:
		return logfmt.CacheReplica
	case Primary:
		return logfmt.CachePrimary
	default:
		return logfmt.CacheMiss
	}
}

// ErrUnavailable is returned when a link may exist but no database that
// could say so answered in time.
var ErrUnavailable = errors.New("link store unavailable")

// Config tunes a Resolver.
type Config struct {
	// CacheBytes bounds the heap the cache holds, weighing each entry by
	// its target and its overhead (default 256 MiB).
	CacheBytes int64
	// PollInterval is how often the replica is polled (default 100ms): it
	// bounds how long an edit or takedown takes to reach this proxy.
	PollInterval time.Duration
	// LookupTimeout bounds one replica lookup (default 500ms).
	LookupTimeout time.Duration
	// PrimaryTimeout bounds one ask of the primary, including the wait for
	// a slot (default 500ms).
	PrimaryTimeout time.Duration
	// PrimaryConcurrency bounds concurrent asks of the primary (default 8).
	PrimaryConcurrency int
	// RecentWindow is how far above the watermark an id may be and still be
	// asked of the primary (default 1,000,000: over 15 minutes of creation
	// at ten times the design's average). Ids beyond it were never issued;
	// a scan of random codes lands there and touches no database.
	RecentWindow int64
	// MaxLag is the replay lag past which the proxy reports not ready
	// (default 10s).
	MaxLag time.Duration
	// FeedCheckInterval is how often the poller also reads the primary's
	// change feed above the replica's position (default 1s): it bounds
	// how long an edit or takedown takes to reach this proxy when its
	// replica falls behind or stops (see lookAhead).
	FeedCheckInterval time.Duration
	// LookupWorkers is how many replica queries for lookups may run at
	// once (default 4). Lookups waiting meanwhile share the next query, so
	// fewer workers mean bigger batches under load and less replica CPU per
	// lookup; an idle proxy still sends each lookup at once.
	LookupWorkers int
}

func (c *Config) defaults() {
	if c.CacheBytes <= 0 {
		c.CacheBytes = 256 << 20
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = 500 * time.Millisecond
	}
	if c.PrimaryTimeout <= 0 {
		c.PrimaryTimeout = 500 * time.Millisecond
	}
	if c.PrimaryConcurrency <= 0 {
		c.PrimaryConcurrency = 8
	}
	if c.RecentWindow <= 0 {
		c.RecentWindow = 1_000_000
	}
	if c.MaxLag <= 0 {
		c.MaxLag = 10 * time.Second
	}
	if c.LookupWorkers <= 0 {
		c.LookupWorkers = 4
	}
	if c.FeedCheckInterval <= 0 {
		c.FeedCheckInterval = time.Second
	}
}

// Resolver resolves codes and aliases. It is safe for concurrent use.
type Resolver struct {
	cfg     Config
	logger  *slog.Logger
	replica *pgxpool.Pool
	primary *pgxpool.Pool // nil: no read-your-writes, no fallback

	cache *otter.Cache[int64, Entry]
	// fillMu orders cache fills against evictions: a fill is dropped if an
	// eviction ran since its lookup began (gen changed), so an edit can
	// never be undone by a lookup that read the old row.
	fillMu sync.Mutex
	gen    atomic.Uint64

	aliasMu sync.RWMutex
	aliases map[string]int64

	watermark  atomic.Int64 // largest link id the replica has
	primaryMax atomic.Int64 // largest link id the primary had, polled while the replica is down
	lagNS      atomic.Int64 // replica replay lag; -1 unknown
	// replicaOK routes misses: false from a failed lookup or poll until
	// the next successful poll, and misses go to the primary meanwhile.
	replicaOK atomic.Bool
	// pollErr is why the last poll of the replica failed, nil when it
	// succeeded: readiness follows the poller, not one slow lookup.
	pollErr  atomic.Pointer[string]
	lastPoll atomic.Int64 // unix ns of the last successful replica poll
	loaded   atomic.Bool  // alias map and feed position loaded
	polled   atomic.Bool  // a poll of either database has succeeded

	feed  feedState   // poller only
	stall replayStall // poller only
	// ahead is the primary's change feed above the replica's position,
	// and lastAhead when it was last read (poller only); pending holds
	// the links it changed that the replica has not replayed yet, by the
	// change's number: they are asked of the primary.
	ahead     feedState
	lastAhead time.Time
	pendingMu sync.Mutex
	pending   map[int64]int64
	pendingN  atomic.Int64

	sf         singleflight.Group
	primarySem chan struct{}
	batch      *batcher

	hits, cacheMisses, replicaLookups, primaryAsks, primaryErrors, misses atomic.Uint64
	evictions, conflictRetries, replicaErrors, windowRejections, batches  atomic.Uint64
	aheadEvictions                                                        atomic.Uint64
	badRules                                                              atomic.Uint64
}

// New returns a Resolver; Run must be running for it to follow the replica.
func New(cfg Config, logger *slog.Logger, replica, primary *pgxpool.Pool) (*Resolver, error) {
	cfg.defaults()
	cache, err := otter.New(&otter.Options[int64, Entry]{
		MaximumWeight: uint64(cfg.CacheBytes),
		Weigher:       func(_ int64, e Entry) uint32 { return entryWeight(e) },
	})
	if err != nil {
		return nil, fmt.Errorf("create link cache: %w", err)
	}
	r := &Resolver{
		cfg: cfg, logger: logger, replica: replica, primary: primary, cache: cache,
		aliases: map[string]int64{}, pending: map[int64]int64{}, primarySem: make(chan struct{}, cfg.PrimaryConcurrency),
	}
	r.lagNS.Store(-1)
	r.batch = newBatcher(r, replica, cfg.LookupWorkers)
	return r, nil
}

// Close stops the resolver's lookup workers.
func (r *Resolver) Close() { r.batch.close() }

// Cached returns a link from the cache without touching a database. It
// does not allocate.
func (r *Resolver) Cached(id int64) (Entry, bool) {
	e, ok := r.cache.GetIfPresent(id)
	if ok {
		r.hits.Add(1)
	}
	return e, ok
}

// Resolve returns the link with id. A link that does not exist is
// sfsql.ErrNotFound with outcome Miss; ErrUnavailable means no database
// could answer.
func (r *Resolver) Resolve(ctx context.Context, id int64) (Entry, Outcome, error) {
	if e, ok := r.Cached(id); ok {
		return e, Hit, nil
	}
	r.cacheMisses.Add(1)
	type result struct {
		e   Entry
		out Outcome
	}
	v, err, _ := r.sf.Do(strconv.FormatInt(id, 10), func() (any, error) {
		gen := r.gen.Load()
		e, out, err := r.lookup(ctx, id)
		if err == nil {
			if e.Opts != nil && e.Opts.BadRules {
				r.badRules.Add(1)
			}
			r.fill(id, e, gen)
		}
		return result{e, out}, err
	})
	res, _ := v.(result)
	if errors.Is(err, sfsql.ErrNotFound) {
		r.misses.Add(1)
		return Entry{}, Miss, err
	}
	return res.e, res.out, err
}

// ResolveAlias returns the link an alias names. An alias this proxy does
// not know is a Miss that touches no database.
func (r *Resolver) ResolveAlias(ctx context.Context, alias []byte) (Entry, Outcome, error) {
	r.aliasMu.RLock()
	id, ok := r.aliases[string(alias)]
	r.aliasMu.RUnlock()
	if !ok {
		r.misses.Add(1)
		return Entry{}, Miss, sfsql.ErrNotFound
	}
	return r.Resolve(ctx, id)
}

func (r *Resolver) fill(id int64, e Entry, gen uint64) {
	r.fillMu.Lock()
	if r.gen.Load() == gen {
		r.cache.Set(id, e)
	}
	r.fillMu.Unlock()
}

func (r *Resolver) lookup(ctx context.Context, id int64) (Entry, Outcome, error) {
	// An id far above anything issued was never created: a scan of random
	// codes lands here, and is answered without asking any database.
	if known := max(r.watermark.Load(), r.primaryMax.Load()); r.polled.Load() && id > known+r.cfg.RecentWindow {
		r.windowRejections.Add(1)
		return Entry{}, Miss, sfsql.ErrNotFound
	}
	if r.isPending(id) {
		// Changed on the primary, not yet replayed here: the replica's
		// row is the old one.
		return r.askPrimary(ctx, id)
	}
	if r.replicaOK.Load() {
		e, err := r.replicaLookup(ctx, id)
		switch {
		case err == nil:
			return e, Replica, nil
		case errors.Is(err, sfsql.ErrNotFound):
			w := r.watermark.Load()
			if id <= w || id > w+r.cfg.RecentWindow {
				if id > w {
					r.windowRejections.Add(1)
				}
				return Entry{}, Miss, sfsql.ErrNotFound
			}
			return r.askPrimary(ctx, id)
		default:
			r.setReplicaDown(err)
		}
	}
	known := max(r.watermark.Load(), r.primaryMax.Load())
	if id > known+r.cfg.RecentWindow {
		r.windowRejections.Add(1)
		return Entry{}, Miss, sfsql.ErrNotFound
	}
	return r.askPrimary(ctx, id)
}

// isConflict reports a query the standby cancelled for a conflict with
// recovery (for example while a migration's lock replays): it is retried.
// Postgres reports these as serialization failures (40001), or as a
// deadlock (40P01) when replay waited on a lock the query held.
func isConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

func (r *Resolver) replicaLookup(ctx context.Context, id int64) (Entry, error) {
	r.replicaLookups.Add(1)
	e, err := r.batch.lookup(ctx, id)
	if err != nil && !errors.Is(err, sfsql.ErrNotFound) {
		r.replicaErrors.Add(1)
	}
	return e, err
}

func entryOf(l sfsql.Link) Entry {
	return Entry{ID: l.ID, Target: l.Target, Type: uint16(l.RedirectType), Disabled: l.Disabled, Opts: optionsOf(l.LinkFeatures)}
}

func (r *Resolver) askPrimary(ctx context.Context, id int64) (Entry, Outcome, error) {
	if r.primary == nil {
		return Entry{}, Miss, ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PrimaryTimeout)
	defer cancel()
	select {
	case r.primarySem <- struct{}{}:
		defer func() { <-r.primarySem }()
	case <-ctx.Done():
		r.primaryErrors.Add(1)
		return Entry{}, Miss, fmt.Errorf("%w: too many asks of the primary waiting", ErrUnavailable)
	}
	r.primaryAsks.Add(1)
	l, err := sfsql.LinkByID(ctx, r.primary, id)
	switch {
	case err == nil:
		return entryOf(l), Primary, nil
	case errors.Is(err, sfsql.ErrNotFound):
		return Entry{}, Miss, err
	default:
		r.primaryErrors.Add(1)
		return Entry{}, Miss, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
}

func (r *Resolver) setReplicaDown(err error) {
	if r.replicaOK.Swap(false) {
		r.logger.Warn("replica unreachable; misses go to the primary", "err", err)
	}
}

// Ready reports whether the proxy should receive traffic, and if not, why.
func (r *Resolver) Ready() (bool, string) {
	switch {
	case !r.loaded.Load():
		return false, "starting: replica not polled yet"
	case r.pollErr.Load() != nil:
		// Only the poller's verdict: a lookup that timed out on a busy
		// replica sends misses to the primary until the next poll, but
		// does not take the proxy out of the balancer. Once it did, and
		// when one replica was overloaded, every proxy reading it
		// dropped out at once and HAProxy answered 503 for all
		// (lbbench, 2026-12-03).
		return false, "replica unreachable: " + *r.pollErr.Load()
	}
	if since := time.Since(time.Unix(0, r.lastPoll.Load())); since > 5*r.cfg.PollInterval+time.Second {
		return false, fmt.Sprintf("replica not polled for %s", since.Round(time.Millisecond))
	}
	if lag := time.Duration(r.lagNS.Load()); lag > r.cfg.MaxLag {
		return false, fmt.Sprintf("replica lags %s, bound %s", lag.Round(time.Millisecond), r.cfg.MaxLag)
	}
	return true, "ok"
}

// Polled reports whether any poll has succeeded: before it, the watermark
// is unknown and the proxy must not answer.
func (r *Resolver) Polled() bool { return r.polled.Load() }

// LagNS is the replica's replay lag at the last poll, -1 if unknown.
func (r *Resolver) LagNS() int64 { return r.lagNS.Load() }

// Watermark is the largest link id the replica had at the last poll.
func (r *Resolver) Watermark() int64 { return r.watermark.Load() }

// Stats are the resolver's counters.
type Stats struct {
	Hits, CacheMisses, ReplicaLookups, PrimaryAsks, PrimaryErrors, Misses uint64
	Evictions, ConflictRetries, ReplicaErrors, WindowRejections, Batches  uint64
	// AheadEvictions counts evictions for changes read on the primary
	// before the replica had them.
	AheadEvictions uint64
	// Pending is how many links are asked of the primary because the
	// replica has yet to replay a change of theirs.
	Pending      int64
	CacheEntries int
	CacheBytes   uint64
	Aliases      int

	// BadRules counts lookups of links whose stored rules did not parse
	// (they redirect to their own target).
	BadRules uint64
}

// Stats returns the counters.
func (r *Resolver) Stats() Stats {
	r.aliasMu.RLock()
	n := len(r.aliases)
	r.aliasMu.RUnlock()
	return Stats{
		Hits: r.hits.Load(), CacheMisses: r.cacheMisses.Load(), ReplicaLookups: r.replicaLookups.Load(), PrimaryAsks: r.primaryAsks.Load(),
		PrimaryErrors: r.primaryErrors.Load(), Misses: r.misses.Load(), Evictions: r.evictions.Load(),
		ConflictRetries: r.conflictRetries.Load(), ReplicaErrors: r.replicaErrors.Load(),
		WindowRejections: r.windowRejections.Load(), Batches: r.batches.Load(), AheadEvictions: r.aheadEvictions.Load(), Pending: r.pendingN.Load(), BadRules: r.badRules.Load(),
		CacheEntries: r.cache.EstimatedSize(), CacheBytes: r.cache.WeightedSize(), Aliases: n,
	}
}
