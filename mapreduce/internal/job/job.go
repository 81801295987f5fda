// Package job is one mapreduce run: it pulls the sealed access log segments
// every proxy has and the ledger lacks, verifies them, aggregates clicks
// per link per hour through map, combine, partition and reduce stages, and
// commits the aggregates with the ledger rows in one transaction
// (DESIGN.md decision 6).
package job

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"shortfleet/logfmt"
)

// Config configures runs.
type Config struct {
	// Proxies are the proxies' admin base URLs.
	Proxies []string
	// Token is the proxies' admin bearer token.
	Token string
	// Parallel bounds concurrent segment pulls (default 4).
	Parallel int
	// Partitions is the number of reduce partitions (default 8).
	Partitions int
	// HTTPTimeout bounds one request to a proxy (default 1 minute).
	HTTPTimeout time.Duration
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
}

// New returns a Job.
func New(cfg Config, logger *slog.Logger, db *pgxpool.Pool) *Job {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 8
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = time.Minute
	}
	return &Job{cfg: cfg, logger: logger, db: db, client: &http.Client{Timeout: cfg.HTTPTimeout}}
}

// Result is what a run did.
type Result struct {
	Segments    int      // segments ingested
	Records     int64    // records read from them
	Clicks      int64    // clicks added to the stats
	Aggregates  int      // (link, hour) rows upserted
	ProxiesDown []string // proxies that could not be listed; caught up next run
	Failed      []string // segments that could not be pulled or read; retried next run
}

// segment is one sealed segment to ingest.
type segment struct {
	proxyURL string
	proxy    string
	entry    logfmt.Entry
	parts    []Counts
	records  int64
}

// Run performs one run. It returns ErrLocked, doing nothing, if another run
// holds the lock.
func (j *Job) Run(ctx context.Context) (Result, error) {
	var res Result
	conn, err := j.db.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("connect to primary: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, LockKey).Scan(&locked); err != nil {
		return res, fmt.Errorf("take run lock: %w", err)
	}
	if !locked {
		return res, ErrLocked
	}
	defer func() {
		// A lost connection releases the lock by itself.
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, LockKey)
	}()

	pending, known, err := j.pending(ctx, conn.Conn(), &res)
	if err != nil {
		return res, err
	}
	// Segments the ledger has that a proxy still lists (an earlier
	// acknowledgement was lost) are acknowledged again.
	defer func() { j.acknowledge(ctx, known) }()
	if len(pending) == 0 {
		return res, nil
	}
	done := j.mapAll(ctx, pending, &res)
	if len(done) == 0 {
		return res, nil
	}
	reduced := j.reduceAll(done)
	if err := j.commit(ctx, conn.Conn(), done, reduced, &res); err != nil {
		return res, err
	}
	known = append(known, done...)
	return res, nil
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
		body, _ := json.Marshal(map[string][]string{"names": names})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(u, "/")+"/segments/ingested", bytes.NewReader(body))
		if err != nil {
			continue
		}
		req.Header.Set("Authorization", "Bearer "+j.cfg.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := j.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		if err != nil {
			j.logger.Warn("acknowledging ingested segments failed; they will be listed again", "proxy", u, "segments", len(names), "err", err)
		}
	}
}

// pending lists every proxy's pending segments and returns those the
// ledger lacks, and those it has (known).
func (j *Job) pending(ctx context.Context, conn *pgx.Conn, res *Result) (pending, known []*segment, err error) {
	var (
		mu  sync.Mutex
		all []*segment
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(j.cfg.Parallel)
	for _, p := range j.cfg.Proxies {
		g.Go(func() error {
			proxy, entries, err := j.list(gctx, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				j.logger.Warn("proxy unreachable; its segments wait for the next run", "proxy", p, "err", err)
				res.ProxiesDown = append(res.ProxiesDown, p)
				return nil
			}
			for _, e := range entries {
				all = append(all, &segment{proxyURL: p, proxy: proxy, entry: e})
			}
			return nil
		})
	}
	_ = g.Wait()
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
	sort.Slice(pending, func(a, b int) bool {
		if pending[a].proxy != pending[b].proxy {
			return pending[a].proxy < pending[b].proxy
		}
		return pending[a].entry.Name < pending[b].entry.Name
	})
	return pending, known, nil
}

// listing is a proxy's answer to GET /segments.
type listing struct {
	Proxy    string         `json:"proxy"`
	Segments []logfmt.Entry `json:"segments"`
}

func (j *Job) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+j.cfg.Token)
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

func (j *Job) list(ctx context.Context, base string) (string, []logfmt.Entry, error) {
	resp, err := j.get(ctx, strings.TrimRight(base, "/")+"/segments")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	var l listing
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&l); err != nil {
		return "", nil, fmt.Errorf("decode listing of %s: %w", base, err)
	}
	if l.Proxy == "" {
		return "", nil, fmt.Errorf("listing of %s names no proxy", base)
	}
	var entries []logfmt.Entry
	for _, e := range l.Segments {
		if err := e.Validate(); err != nil {
			j.logger.Warn("bad listing entry skipped", "proxy", l.Proxy, "err", err)
			continue
		}
		entries = append(entries, e)
	}
	return l.Proxy, entries, nil
}

// mapAll pulls, verifies, maps, combines and partitions every pending
// segment, in parallel; it returns those that succeeded.
func (j *Job) mapAll(ctx context.Context, pending []*segment, res *Result) []*segment {
	var (
		mu   sync.Mutex
		done []*segment
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(j.cfg.Parallel)
	for _, s := range pending {
		g.Go(func() error {
			err := j.mapSegment(gctx, s)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				j.logger.Warn("segment not ingested; retried next run", "proxy", s.proxy, "segment", s.entry.Name, "err", err)
				res.Failed = append(res.Failed, s.proxy+"/"+s.entry.Name)
				return nil
			}
			done = append(done, s)
			return nil
		})
	}
	_ = g.Wait()
	return done
}

// Pull fetches one segment and verifies its size and checksum against its
// manifest entry.
func (j *Job) pull(ctx context.Context, s *segment) ([]byte, error) {
	resp, err := j.get(ctx, strings.TrimRight(s.proxyURL, "/")+"/segments/"+url.PathEscape(s.entry.Name))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.entry.Bytes+1))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", s.entry.Name, err)
	}
	if err := Verify(data, s.entry); err != nil {
		return nil, err
	}
	return data, nil
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

func (j *Job) mapSegment(ctx context.Context, s *segment) error {
	data, err := j.pull(ctx, s)
	if err != nil {
		return err
	}
	combined, records, err := MapCombine(data)
	if err != nil {
		return fmt.Errorf("read segment %s: %w", s.entry.Name, err)
	}
	if records != s.entry.Rows {
		return fmt.Errorf("%w: segment %s has %d records, manifest says %d", logfmt.ErrCorrupt, s.entry.Name, records, s.entry.Rows)
	}
	s.records = records
	s.parts = Partition(combined, j.cfg.Partitions)
	return nil
}

// MapCombine runs the map and combine stages over a whole segment.
func MapCombine(data []byte) (Counts, int64, error) {
	rd, err := logfmt.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, 0, err
	}
	defer rd.Release()
	c := make(Counts)
	var keys []Key
	var records int64
	for rd.Next() {
		b := rd.Batch()
		records += int64(b.Len())
		keys = Map(b, keys[:0])
		Combine(c, keys)
	}
	return c, records, rd.Err()
}

// reduceAll runs one reducer per partition, in parallel.
func (j *Job) reduceAll(done []*segment) []Counts {
	out := make([]Counts, j.cfg.Partitions)
	var wg sync.WaitGroup
	for p := range out {
		wg.Go(func() {
			inputs := make([]Counts, len(done))
			for i, s := range done {
				inputs[i] = s.parts[p]
			}
			out[p] = Reduce(inputs)
		})
	}
	wg.Wait()
	return out
}

// commit writes the aggregates and the ledger rows in one transaction: the
// aggregates through COPY into a staging table and one set-based upsert.
// A ledger row that exists already aborts everything, so a segment is never
// counted twice even if the lock were bypassed.
func (j *Job) commit(ctx context.Context, conn *pgx.Conn, done []*segment, reduced []Counts, res *Result) error {
	var rows [][]any
	var clicks int64
	for _, part := range reduced {
		for k, v := range part {
			rows = append(rows, []any{k.LinkID, time.Unix(k.Hour, 0).UTC(), v})
			clicks += v
		}
	}
	var ledger [][]any
	var records int64
	for _, s := range done {
		sum, _ := hex.DecodeString(s.entry.SHA256)
		ledger = append(ledger, []any{s.proxy, s.entry.Name, sum, s.entry.Rows, s.entry.Bytes})
		records += s.records
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE clicks_stage (link_id bigint, hour timestamptz, clicks bigint) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"clicks_stage"}, []string{"link_id", "hour", "clicks"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy aggregates: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO clicks_hourly (link_id, hour, clicks)
			SELECT link_id, hour, clicks FROM clicks_stage
			ON CONFLICT (link_id, hour) DO UPDATE SET clicks = clicks_hourly.clicks + EXCLUDED.clicks`); err != nil {
			return fmt.Errorf("upsert aggregates: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ingested_segments"}, []string{"proxy", "name", "sha256", "rows", "bytes"}, pgx.CopyFromRows(ledger)); err != nil {
			return fmt.Errorf("record ingested segments: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit run: %w", err)
	}
	res.Segments, res.Records, res.Clicks, res.Aggregates = len(done), records, clicks, len(rows)
	return nil
}
