package links

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// feedHoleTimeout is how long a gap in the change feed's sequence is waited
// for: a sequence number is drawn when a change is written but becomes
// visible only at commit, so numbers can appear out of order, and a rolled
// back change leaves a gap that never fills.
const feedHoleTimeout = 30 * time.Second

// feedReplay is how far below the newest change a fresh start replays the
// feed, to catch changes that commit out of order around the start.
const feedReplay = 1000

// feedState tracks which changes have been applied. Everything at or below
// low has been applied or given up on; seen holds applied numbers above it.
type feedState struct {
	low      int64
	seen     map[int64]bool
	holeFrom map[int64]time.Time
}

// Run follows the replica (or, while it is down, the primary) every
// PollInterval until ctx ends.
func (r *Resolver) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		r.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// WaitPolled polls until a poll succeeds, every 200 ms, warning every 5 s
// that neither database answers: until then the watermark is unknown, and
// answering could 404 a link created moments ago. It returns ctx's error
// if ctx ends first.
func (r *Resolver) WaitPolled(ctx context.Context) error {
	t := time.Now()
	for r.Poll(ctx); !r.Polled(); r.Poll(ctx) {
		if time.Since(t) > 5*time.Second {
			r.logger.Warn("neither the replica nor the primary answers; waiting before serving")
			t = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// Poll polls once: the replica if it answers, else the primary.
func (r *Resolver) Poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := r.poll(ctx, r.replica, true)
	for attempt := 1; attempt < 4 && isConflict(err); attempt++ {
		r.conflictRetries.Add(1)
		time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
		err = r.poll(ctx, r.replica, true)
	}
	if err == nil {
		if aerr := r.lookAhead(ctx); aerr != nil {
			r.logger.Debug("looking ahead on the primary failed", "err", aerr)
		}
		if !r.replicaOK.Swap(true) {
			r.logger.Info("replica reachable", "watermark", r.watermark.Load())
		}
		r.pollErr.Store(nil)
		r.lastPoll.Store(time.Now().UnixNano())
		r.polled.Store(true)
		return
	}
	msg := err.Error()
	r.pollErr.Store(&msg)
	r.setReplicaDown(err)
	if r.primary != nil {
		if perr := r.poll(ctx, r.primary, false); perr != nil {
			r.logger.Debug("primary poll failed too", "err", perr)
		} else {
			r.polled.Store(true)
		}
	}
}

func (r *Resolver) poll(ctx context.Context, db *pgxpool.Pool, isReplica bool) error {
	if !r.loaded.Load() {
		if err := r.load(ctx, db); err != nil {
			return err
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT coalesce(max(id), 0) FROM links`)
	b.Queue(`SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
		WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
		ELSE coalesce((extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1e9)::bigint, -1) END,
		coalesce(pg_last_wal_replay_lsn()::text, '')`)
	b.Queue(`SELECT coalesce(min(seq), 0) FROM link_changes`)
	b.Queue(`SELECT c.seq, c.link_id, c.alias, a.link_id FROM link_changes c
		LEFT JOIN aliases a ON a.alias = c.alias
		WHERE c.seq > $1 ORDER BY c.seq LIMIT 10000`, r.feed.low)
	res := db.SendBatch(ctx, b)
	defer res.Close()
	var maxID, lag, minSeq int64
	var replayLSN string
	if err := res.QueryRow().Scan(&maxID); err != nil {
		return fmt.Errorf("poll largest link id: %w", err)
	}
	if err := res.QueryRow().Scan(&lag, &replayLSN); err != nil {
		return fmt.Errorf("poll replay lag: %w", err)
	}
	if err := res.QueryRow().Scan(&minSeq); err != nil {
		return fmt.Errorf("poll change feed start: %w", err)
	}
	rows, err := res.Query()
	if err != nil {
		return fmt.Errorf("poll change feed: %w", err)
	}
	type change struct {
		seq, link int64
		alias     *string
		aliasLink *int64
	}
	var changes []change
	for rows.Next() {
		var c change
		if err := rows.Scan(&c.seq, &c.link, &c.alias, &c.aliasLink); err != nil {
			return fmt.Errorf("poll change feed: %w", err)
		}
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("poll change feed: %w", err)
	}
	if isReplica {
		r.watermark.Store(maxID)
		r.lagNS.Store(r.stall.lag(lag, replayLSN, time.Now()))
	} else {
		r.primaryMax.Store(maxID)
	}
	if r.feed.low > 0 && minSeq > r.feed.low+1 {
		// Changes this proxy never saw were pruned: forget everything.
		r.logger.Warn("change feed pruned past this proxy's position; clearing the cache", "position", r.feed.low, "oldest", minSeq)
		r.evictAll()
		r.loaded.Store(false)
		return nil
	}
	for _, c := range changes {
		if r.feed.seen[c.seq] {
			continue
		}
		r.feed.seen[c.seq] = true
		if c.alias != nil {
			r.aliasMu.Lock()
			if c.aliasLink != nil {
				r.aliases[*c.alias] = *c.aliasLink
			} else {
				delete(r.aliases, *c.alias)
			}
			r.aliasMu.Unlock()
		}
		r.evict(c.link)
	}
	r.feed.advance(time.Now())
	return nil
}

// replayStall follows the replica's replay position while WAL waits to be
// replayed and the replica cannot date its lag: until it has replayed a
// transaction since it started, Postgres has no replay timestamp, and a
// replica whose replay is stuck (paused, or waiting on a conflicting lock)
// right after a restart would otherwise report an unknown lag, and stay
// ready, forever.
type replayStall struct {
	lsn   string    // replay position when it was last seen to move
	since time.Time // when that was
	// caughtUp is when a poll last found everything received replayed.
	caughtUp time.Time
}

// lag returns the replay lag to report: the lag Postgres computed if it
// could (polled is -1 when it could not), else how long the replay position
// has stood still with WAL waiting, a lower bound of the lag; -1 the first
// time a position is seen.
//
// Postgres's figure is the age of the last transaction replayed, which
// overstates the lag after a quiet spell: WAL without a commit (autovacuum
// of a freshly loaded table) arriving a minute after the last commit reads
// as a minute behind while it replays in milliseconds. Every proxy of an
// idle fleet then left the balancer at once (lbbench, 2026-12-03: replica
// "lags 41s", HAProxy answered 503). The replica cannot be further behind
// than since it was last seen caught up, so the figure is capped by that.
func (s *replayStall) lag(polled int64, lsn string, now time.Time) int64 {
	if polled == 0 {
		s.lsn, s.caughtUp = "", now
		return 0
	}
	if polled != -1 {
		s.lsn = ""
		if !s.caughtUp.IsZero() {
			return min(polled, int64(now.Sub(s.caughtUp)))
		}
		return polled
	}
	if lsn != s.lsn {
		s.lsn, s.since = lsn, now
		return -1
	}
	return int64(now.Sub(s.since))
}

// advance moves the low mark over applied changes and over gaps that
// stayed open longer than feedHoleTimeout.
func (f *feedState) advance(now time.Time) {
	var top int64
	for s := range f.seen {
		top = max(top, s)
	}
	for s := f.low + 1; s <= top; s++ {
		if f.seen[s] {
			delete(f.seen, s)
			delete(f.holeFrom, s)
			f.low = s
			continue
		}
		since, ok := f.holeFrom[s]
		if !ok {
			f.holeFrom[s] = now
			break
		}
		if now.Sub(since) < feedHoleTimeout {
			break
		}
		delete(f.holeFrom, s)
		f.low = s
	}
}

// raise moves the low mark up to low, forgetting what lies below it.
func (f *feedState) raise(low int64) {
	if low <= f.low {
		return
	}
	f.low = low
	for s := range f.seen {
		if s <= low {
			delete(f.seen, s)
		}
	}
	for s := range f.holeFrom {
		if s <= low {
			delete(f.holeFrom, s)
		}
	}
}

func newFeedState(low int64) feedState {
	return feedState{low: low, seen: map[int64]bool{}, holeFrom: map[int64]time.Time{}}
}

// lookAhead reads the primary's change feed above the replica's position,
// every FeedCheckInterval: a change there that the replica has not
// replayed yet evicts its link at once, and the link is asked of the
// primary until the replica has replayed the change. So an edit or a
// takedown reaches this proxy within about FeedCheckInterval plus a poll
// whatever its replica does: a replica that replays slowly, has paused, or
// receives nothing (its replay lag then reads zero) is caught alike. A
// healthy replica has replayed nearly everything by the time the primary
// is asked, so the ask usually finds no rows; it costs the primary one
// index scan per proxy per interval.
func (r *Resolver) lookAhead(ctx context.Context) error {
	if r.primary == nil || time.Since(r.lastAhead) < r.cfg.FeedCheckInterval {
		return nil
	}
	r.lastAhead = time.Now()
	r.settle()
	if r.ahead.seen == nil {
		r.ahead = newFeedState(r.feed.low)
	}
	r.ahead.raise(r.feed.low)
	rows, err := r.primary.Query(ctx, `SELECT seq, link_id FROM link_changes WHERE seq > $1 ORDER BY seq LIMIT 10000`, r.ahead.low)
	if err != nil {
		return fmt.Errorf("read the primary's change feed: %w", err)
	}
	var seq, link int64
	_, err = pgx.ForEachRow(rows, []any{&seq, &link}, func() error {
		if r.ahead.seen[seq] {
			return nil
		}
		r.ahead.seen[seq] = true
		if r.feed.seen[seq] {
			return nil // the replica has it already
		}
		r.pendingMu.Lock()
		if r.pending[link] < seq {
			r.pending[link] = seq
		}
		r.pendingN.Store(int64(len(r.pending)))
		r.pendingMu.Unlock()
		r.evict(link)
		r.aheadEvictions.Add(1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the primary's change feed: %w", err)
	}
	r.ahead.advance(time.Now())
	return nil
}

// settle forgets the pending links whose change the replica has applied.
func (r *Resolver) settle() {
	if r.pendingN.Load() == 0 {
		return
	}
	r.pendingMu.Lock()
	for link, seq := range r.pending {
		if seq <= r.feed.low || r.feed.seen[seq] {
			delete(r.pending, link)
		}
	}
	r.pendingN.Store(int64(len(r.pending)))
	r.pendingMu.Unlock()
}

// isPending reports whether the replica has yet to replay a change of id
// that the primary's feed showed.
func (r *Resolver) isPending(id int64) bool {
	if r.pendingN.Load() == 0 {
		return false
	}
	r.pendingMu.Lock()
	_, ok := r.pending[id]
	r.pendingMu.Unlock()
	return ok
}

// load reads the whole alias map and the feed position from one snapshot.
func (r *Resolver) load(ctx context.Context, db *pgxpool.Pool) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("load aliases: %w", err)
	}
	defer tx.Rollback(ctx)
	var top int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM link_changes`).Scan(&top); err != nil {
		return fmt.Errorf("load feed position: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT alias, link_id FROM aliases`)
	if err != nil {
		return fmt.Errorf("load aliases: %w", err)
	}
	aliases := map[string]int64{}
	for rows.Next() {
		var a string
		var id int64
		if err := rows.Scan(&a, &id); err != nil {
			return fmt.Errorf("load aliases: %w", err)
		}
		aliases[a] = id
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load aliases: %w", err)
	}
	r.aliasMu.Lock()
	r.aliases = aliases
	r.aliasMu.Unlock()
	r.feed = newFeedState(max(0, top-feedReplay))
	r.loaded.Store(true)
	r.logger.Info("aliases loaded", "aliases", len(aliases), "feed_position", top)
	return nil
}

// evict drops a link from the cache, and stops lookups that began before
// from filling it with what they read.
func (r *Resolver) evict(id int64) {
	r.fillMu.Lock()
	r.gen.Add(1)
	r.cache.Invalidate(id)
	r.fillMu.Unlock()
	r.evictions.Add(1)
}

func (r *Resolver) evictAll() {
	r.fillMu.Lock()
	r.gen.Add(1)
	r.cache.InvalidateAll()
	r.fillMu.Unlock()
}
