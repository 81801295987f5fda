// Command mapreducebench measures the mapreduce job:
//
//   - records per second from segments on local disk, every dimension on,
//     beside the Arrow reader merely decoding the same segments (the
//     BenchmarkLocalSegments Go benchmark, run and parsed);
//   - one real `mapreduce -once` run pulling, aggregating and committing
//     five minutes of a 16-proxy fleet at the design's average of 10,000
//     redirects a second: 3,000,000 records in 80 segments, served by 16
//     real proxy segment APIs (logfmt/ship's handler, which a proxy's
//     admin listener mounts) on loopback into a real Postgres primary.
//
// It writes bench/results/<date>-mapreduce.md and the table in
// bench/README.md. With -baseline (a mapreduce binary built from main,
// say) it also times that binary's run of the same window, on a database
// of its own, before and after this build's, so a change is measured
// beside its baseline in one run; -rounds shortens the local-disk
// benchmark for a locked run on a shared machine.
//
// Its output ends with one "bench: NAME VALUE" line a headline figure:
// mapreduce_vs_decode, aggregate_mrecords_per_s, window_3m_seconds,
// window_3m_merge_seconds (the same window taken again into the same
// database: every link-day and hour stored already, as production's
// windows after a day's first find them; right after a checkpoint, so
// the first change of every page writes its whole image to the WAL, as
// in every window that follows one) and
// window_3m_merge_between_checkpoints_seconds (that window once more, no
// checkpoint asked for since the last: what the windows between two
// checkpoints see).
//
//	make bench-mapreduce
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/bench/internal/report"
	"shortfleet/logfmt"
	"shortfleet/logfmt/logfmttest"
	"shortfleet/logfmt/ship"
	"shortfleet/provisioning/pgcluster"
	sfsql "shortfleet/sql"
)

func main() {
	var (
		proxies  = flag.Int("proxies", 16, "proxies")
		records  = flag.Int("records", 3_000_000, "records in the window, over all proxies")
		segments = flag.Int("segments", 5, "segments per proxy (one a minute)")
		bin      = flag.String("bin", "bin", "folder with the mapreduce binary")
		results  = flag.String("results", "bench/results", "folder for the dated report")
		readme   = flag.String("readme", "bench/README.md", "README whose mapreduce-bench section is rewritten")
		rounds   = flag.Int("rounds", 5, "rounds of the local-disk benchmark (fewer keeps a locked run short)")
		baseline = flag.String("baseline", "", "a mapreduce binary (one built from main, say) whose run is timed beside bin's, on a database of its own, before and after it")
		baseVer  = flag.Uint("baseline-schema", 0, "the schema version the baseline binary was built for (its latest migration); its databases are migrated to it (0: this build's latest)")
		history  = flag.Int("history-days", 9, "earlier days of stats stored before the merge runs: the window's rows copied to each (production's tables hold every day before today)")
	)
	flag.Parse()
	benchRounds = max(*rounds, 1)
	historyDays = *history
	baselineBin, baselineSchema = *baseline, *baseVer
	if err := run(*proxies, *records, *segments, *bin, *results, *readme); err != nil {
		fmt.Fprintln(os.Stderr, "mapreducebench:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("mapreducebench: "+format+"\n", args...) }

// stageTimes holds the last run's time between stage log lines, and
// writeTimes the parts of its write to Postgres.
var stageTimes, writeTimes string

// loadAvg is the machine's load average when the benchmark started.
var loadAvg string

var stageLineRE = regexp.MustCompile(`^time=(\S+) .*msg="stage (\w+)"`)

// historyDays is how many earlier days' rows addHistory stores, and
// historyRows the hourly and daily rows stored with them.
var (
	historyDays int
	historyRows int64
)

// benchRounds is how many times the local-disk benchmarks run.
var benchRounds = 5

// baselineBin, if set, is a mapreduce binary timed beside bin's, on
// databases at schema version baselineSchema (0: the latest).
var (
	baselineBin    string
	baselineSchema uint
)

var metricRE = regexp.MustCompile(`BenchmarkLocalSegments/(decode|decode_columns|decode_arrow|aggregate|first_run)(?:-\d+)?\s+\d+\s+\d+ ns/op\s+([0-9.]+) records/s`)

func run(nProxies, nRecords, perProxy int, bin, results, readme string) error {
	ctx := context.Background()
	loadAvg = "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			loadAvg = strings.Join(f[:3], " ")
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	say("go test -bench BenchmarkLocalSegments (1,000,000 records from 16 proxies' segments on local disk, %d rounds)", benchRounds)
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", "BenchmarkLocalSegments", "-benchtime", "3x",
		"-count", strconv.Itoa(benchRounds), "./mapreduce/internal/aggregate/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench: %w\n%s", err, out)
	}
	// Each round runs the five benchmarks one after the other, so they
	// share the machine's slow and fast moments; the figure is the median
	// round's, and the spread is reported beside it.
	all := map[string][]float64{}
	for _, m := range metricRE.FindAllStringSubmatch(string(out), -1) {
		r, _ := strconv.ParseFloat(m[2], 64)
		all[m[1]] = append(all[m[1]], r)
	}
	median := func(xs []float64) float64 {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	rates, ratios, spread := map[string]float64{}, map[string]float64{}, map[string]string{}
	for _, k := range []string{"decode", "decode_columns", "decode_arrow", "aggregate", "first_run"} {
		rs := all[k]
		if len(rs) != benchRounds {
			return fmt.Errorf("%d figures for %s in the benchmark output, want %d:\n%s", len(rs), k, benchRounds, out)
		}
		rates[k] = median(rs)
		spread[k] = fmt.Sprintf("%.2f to %.2f", slices.Min(rs)/1e6, slices.Max(rs)/1e6)
		// A round's ratio is taken within the round.
		var rr []float64
		for i, r := range rs {
			rr = append(rr, r/all["decode"][i])
		}
		ratios[k] = median(rr)
	}

	work, cleanup, err := report.WorkDir("mrbench", false)
	if err != nil {
		return err
	}
	defer cleanup()

	say("writing %d records for %d proxies, %d segments each", nRecords, nProxies, perProxy)
	t := time.Now()
	start := time.Now().UTC().Truncate(5 * time.Minute).Add(-10 * time.Minute)
	var urls []string
	var segBytes int64
	for p := range nProxies {
		id := fmt.Sprintf("proxy-%02d", p+1)
		dir := filepath.Join(work, id)
		w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: id, FlushRows: 120, FlushInterval: time.Hour, SealAge: time.Hour, QueueBatches: 4096}, quiet)
		if err != nil {
			return err
		}
		defer w.Close()
		n := nRecords / nProxies
		g := logfmttest.New(uint64(p), 1_000_000, start, 5*time.Minute)
		var r logfmt.Record
		for i := range n {
			g.Next(&r, i, n)
			w.Append(&r)
			if (i+1)%(n/perProxy) == 0 {
				w.Rotate()
			}
		}
		w.Rotate()
		for _, e := range w.Pending() {
			segBytes += e.Bytes
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: ship.Handler(ship.Folder{Proxy: id, Dir: dir, Index: heldIndex{w}}, ship.RequireBearer("bench-token"), quiet)}
		go srv.Serve(ln)
		defer srv.Close()
		urls = append(urls, "http://"+ln.Addr().String())
	}
	say("wrote %.1f MB of sealed segments in %s", float64(segBytes)/1e6, time.Since(t).Round(time.Second))

	pg, err := pgcluster.New(pgcluster.Config{Name: "primary", Dir: filepath.Join(work, "pg"), Addr: "127.0.0.1", Port: freePort(),
		Password: pgcluster.RandomSecret(12)}, quiet)
	if err != nil {
		return err
	}
	if err := pg.Init(ctx); err != nil {
		return err
	}
	if err := pg.Start(ctx, filepath.Join(work, "pg.log")); err != nil {
		return err
	}
	defer pg.Stop()
	if err := pg.CreateDatabase(ctx, "shortfleet"); err != nil {
		return err
	}
	if err := sfsql.MigrateUp(pg.DSN("shortfleet"), quiet); err != nil {
		return err
	}

	runBin := func(path, dsn string) (time.Duration, string, error) {
		cmd := exec.Command(path, "-once", "-proxies", strings.Join(urls, ","))
		cmd.Env = append(os.Environ(), "SHORTFLEET_DSN="+dsn, "SHORTFLEET_ADMIN_TOKEN=bench-token",
			"SHORTFLEET_VISITOR_SALT=bench-salt-0123456789abcdef")
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		t := time.Now()
		err := cmd.Run()
		took := time.Since(t)
		if err != nil {
			return 0, "", fmt.Errorf("mapreduce -once: %w\n%s", err, buf.String())
		}
		var done string
		var stages []string
		var prev time.Time
		sc := bufio.NewScanner(&buf)
		for sc.Scan() {
			l := sc.Text()
			if strings.Contains(l, `msg="run done"`) {
				done = l
			}
			if strings.Contains(l, `msg="stage written"`) {
				say("%s", l)
				var parts []string
				for _, k := range []string{"stored_took", "hours_took", "days_staged_took", "days_took"} {
					if m := regexp.MustCompile(k + `=(\S+)`).FindStringSubmatch(l); m != nil {
						parts = append(parts, strings.TrimSuffix(k, "_took")+" "+m[1])
					}
				}
				writeTimes = strings.Join(parts, ", ")
			}
			if m := stageLineRE.FindStringSubmatch(l); m != nil {
				at, _ := time.Parse(time.RFC3339Nano, m[1])
				if !prev.IsZero() {
					stages = append(stages, fmt.Sprintf("%s %.1f s", m[2], at.Sub(prev).Seconds()))
				}
				prev = at
			}
		}
		stageTimes = strings.Join(stages, ", ")
		return took, done, nil
	}
	once := func() (time.Duration, string, error) {
		return runBin(filepath.Join(bin, "mapreduce"), pg.DSN("shortfleet"))
	}
	// The baseline runs on a database of its own, once before and once
	// after bin's run, so both see the machine's same moments.
	var baseTook []float64
	baseRun := func() error {
		if baselineBin == "" {
			return nil
		}
		db := fmt.Sprintf("shortfleet_base%d", len(baseTook))
		if err := pg.CreateDatabase(ctx, db); err != nil {
			return err
		}
		if err := sfsql.MigrateUp(pg.DSN(db), quiet); err != nil {
			return err
		}
		if baselineSchema > 0 {
			if err := sfsql.MigrateTo(pg.DSN(db), baselineSchema); err != nil {
				return err
			}
		}
		say("baseline %s -once over %d proxies", baselineBin, nProxies)
		took, line, err := runBin(baselineBin, pg.DSN(db))
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		say("baseline: %s", line)
		baseTook = append(baseTook, took.Seconds())
		return nil
	}
	// Acknowledgements are held throughout: the merge runs below take the
	// same window again.
	holdAcks.Store(true)
	if err := baseRun(); err != nil {
		return err
	}
	say("mapreduce -once over %d proxies", nProxies)
	took, line, err := once()
	if err != nil {
		return err
	}
	firstStages, firstWrite := stageTimes, writeTimes
	say("%s", line)
	if err := baseRun(); err != nil {
		return err
	}
	floor, err := insertFloor(ctx, pg.DSN("shortfleet"))
	if err != nil {
		return err
	}
	field := func(k string) string {
		if m := regexp.MustCompile(k + `=(\S+)`).FindStringSubmatch(line); m != nil {
			return m[1]
		}
		return "?"
	}
	took2, line2, err := once()
	if err != nil {
		return err
	}
	if !strings.Contains(line2, "segments=0") {
		return fmt.Errorf("second run ingested something: %s", line2)
	}

	// Production's tables hold every day before the window's: the merge
	// runs find them stored, in this build's database and the baseline's.
	hist := func(db string) error {
		took, rows, err := addHistory(ctx, pg.DSN(db), historyDays)
		historyRows = rows
		if err == nil {
			say("%s: the window's rows copied to %d earlier days in %s", db, historyDays, took.Round(time.Second))
		}
		return err
	}
	if err := hist("shortfleet"); err != nil {
		return err
	}
	if baselineBin != "" {
		for _, i := range []int{0, len(baseTook) - 1} {
			if err := hist(fmt.Sprintf("shortfleet_base%d", i)); err != nil {
				return err
			}
		}
	}

	// The merge case, which production runs: every window after a day's
	// first finds that day's rows stored. The ledger is emptied and the
	// same window taken again into the same database, so each of its
	// link-days and hours is stored already; the baseline does the same on
	// its databases, before and after. First right after a checkpoint
	// (the window that follows one: after it, the first change of each
	// page writes the page's whole image to the WAL), then once more with
	// no checkpoint asked for in between (the windows between two).
	again := func(path, db string, checkpoint bool) (time.Duration, string, error) {
		if _, err := pgExec(ctx, pg.DSN(db), `DELETE FROM ingested_segments`); err != nil {
			return 0, "", err
		}
		if checkpoint {
			if _, err := pgExec(ctx, pg.DSN(db), `CHECKPOINT`); err != nil {
				return 0, "", err
			}
		}
		return runBin(path, pg.DSN(db))
	}
	merge := func(checkpoint bool, what string) (took time.Duration, line, stages, write string, base []float64, err error) {
		baseAgain := func(i int) error {
			if baselineBin == "" {
				return nil
			}
			say("baseline %s -once, the same window again (merge, %s)", baselineBin, what)
			took, line, err := again(baselineBin, fmt.Sprintf("shortfleet_base%d", i), checkpoint)
			if err != nil {
				return fmt.Errorf("baseline merge: %w", err)
			}
			say("baseline merge: %s", line)
			base = append(base, took.Seconds())
			return nil
		}
		if err = baseAgain(0); err != nil {
			return
		}
		say("mapreduce -once, the same window again (merge, %s)", what)
		if took, line, err = again(filepath.Join(bin, "mapreduce"), "shortfleet", checkpoint); err != nil {
			return
		}
		stages, write = stageTimes, writeTimes
		say("merge: %s", line)
		err = baseAgain(len(baseTook) - 1)
		return
	}
	tookM, _, mergeStages, mergeWrite, baseMerge, err := merge(true, "right after a checkpoint")
	if err != nil {
		return err
	}
	tookB, _, betweenStages, betweenWrite, baseBetween, err := merge(false, "no checkpoint since the last")
	if err != nil {
		return err
	}
	mfloor, err := mergeFloor(ctx, pg.DSN("shortfleet"), historyDays)
	if err != nil {
		return err
	}
	holdAcks.Store(false)

	tbl := report.Table{
		Header: []string{"measure", "figure", "beside"},
		Rows: [][]string{
			{"decode only: logfmt's reader, every column (arrow-go's IPC reader, buffers decompressed by logfmt), 2 workers", fmt.Sprintf("%.2f M records/s (rounds: %s)", rates["decode"]/1e6, spread["decode"]), "baseline"},
			{"decode only the 7 columns the map reads (logfmt.NewColumnsReader, as the job reads), 2 workers", fmt.Sprintf("%.2f M records/s (rounds: %s)", rates["decode_columns"]/1e6, spread["decode_columns"]),
				fmt.Sprintf("%.2f of decoding whole", ratios["decode_columns"])},
			{"decode only: arrow-go's plain IPC reader, 2 workers", fmt.Sprintf("%.2f M records/s (rounds: %s)", rates["decode_arrow"]/1e6, spread["decode_arrow"]),
				fmt.Sprintf("%.2f of logfmt's reader", ratios["decode_arrow"])},
			{"aggregate: decode the map's 7 columns, map each segment whole, fold it into the run's per-partition totals, every dimension, 2 workers", fmt.Sprintf("%.2f M records/s (rounds: %s)", rates["aggregate"]/1e6, spread["aggregate"]),
				fmt.Sprintf("**%.2f** of decoding (aim: 0.5, issue 23); classifier caches warm, as in every run but a daemon's first", ratios["aggregate"])},
			{"the same, caches empty (a daemon's first run)", fmt.Sprintf("%.2f M records/s (rounds: %s)", rates["first_run"]/1e6, spread["first_run"]),
				fmt.Sprintf("%.2f of decoding; every distinct user agent parsed by regex once per worker", ratios["first_run"])},
			{fmt.Sprintf("one run: pull, verify, aggregate, commit %s records from %d proxies (%s segments, %.0f MB)", field("records"), nProxies, field("segments"), float64(segBytes)/1e6),
				fmt.Sprintf("**%.1f s** wall (job's own timing %s)", took.Seconds(), field("took")),
				fmt.Sprintf("aim: under 5 s (issue 23); %s clicks, %s hourly and daily rows written; after listing: %s (of the write: %s)", field("clicks"), field("aggregates"), firstStages, firstWrite)},
			{fmt.Sprintf("the same window again, into the same database (the merge case: every link-day and hour stored already, as for every window after a day's first), with %d earlier days of its rows stored too (%d hourly and daily rows in all: production's tables hold every day before today), right after a checkpoint (each page's first change writes its whole image to the WAL)", historyDays, historyRows),
				fmt.Sprintf("**%.1f s** wall", tookM.Seconds()),
				fmt.Sprintf("aim: under 5 s (issue 23); after listing: %s (of the write: %s)", mergeStages, mergeWrite)},
			{"the same again, no checkpoint asked for since the last run (the windows between two checkpoints; with checkpoint_timeout at its default 5 minutes and a window every 5, few are)",
				fmt.Sprintf("**%.1f s** wall", tookB.Seconds()),
				fmt.Sprintf("after listing: %s (of the write: %s)", betweenStages, betweenWrite)},
			{"the next run, nothing new", fmt.Sprintf("%.1f s wall", took2.Seconds()), "start-up, listing, ledger check"},
		},
	}
	tbl.Rows = append(tbl.Rows, []string{"Postgres alone: the run's hourly and daily rows inserted again, server-side (INSERT ... SELECT into copies with the same keys and checks, in key order), one transaction, fsync on",
		fmt.Sprintf("%.2f s (hourly %.2f s, daily %.2f s, commit %.2f s)", floor.total().Seconds(), floor.hours.Seconds(), floor.days.Seconds(), floor.commit.Seconds()),
		"the floor of the write on this schema: one backend takes the rows one after the other"})
	tbl.Rows = append(tbl.Rows, []string{"Postgres alone, the merge case: the window's stored daily rows read through the primary key in key order, its hourly rows added to the stored (the run's upsert), its daily rows written over the stored (the run's update, through the primary key), server-side from copies, one transaction, fsync on, right after a checkpoint",
		fmt.Sprintf("%.2f s (read %.2f s, hourly %.2f s, daily %.2f s, commit %.2f s)", mfloor.total().Seconds(), mfloor.read.Seconds(), mfloor.hours.Seconds(), mfloor.days.Seconds(), mfloor.commit.Seconds()),
		"the floor of the merge case's write on this schema, one backend; the run reads on a second connection while the first takes the hours"})
	if len(baseTook) > 0 {
		tbl.Rows = append(tbl.Rows, []string{fmt.Sprintf("the same window, baseline binary (%s), on a database of its own, run before and after", filepath.Base(baselineBin)),
			fmt.Sprintf("%.1f s and %.1f s wall", baseTook[0], baseTook[len(baseTook)-1]),
			fmt.Sprintf("this build's run: %.2f of the baseline's mean", took.Seconds()/((baseTook[0]+baseTook[len(baseTook)-1])/2))})
		tbl.Rows = append(tbl.Rows, []string{"the merge case, baseline binary, on its databases, run before and after",
			fmt.Sprintf("%.1f s and %.1f s wall", baseMerge[0], baseMerge[len(baseMerge)-1]),
			fmt.Sprintf("this build's merge run: %.2f of the baseline's mean", tookM.Seconds()/((baseMerge[0]+baseMerge[len(baseMerge)-1])/2))})
		tbl.Rows = append(tbl.Rows, []string{"the merge case between checkpoints, baseline binary, run before and after",
			fmt.Sprintf("%.1f s and %.1f s wall", baseBetween[0], baseBetween[len(baseBetween)-1]),
			fmt.Sprintf("this build's run: %.2f of the baseline's mean", tookB.Seconds()/((baseBetween[0]+baseBetween[len(baseBetween)-1])/2))})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, by `make bench-mapreduce` (bench/cmd/mapreducebench); load average %s at the start (the machine is shared: compare ratios within a run).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), report.Machine(), loadAvg)
	b.WriteString(tbl.Markdown())
	fmt.Fprintf(&b, "\nRecords are `logfmt/logfmttest`'s: links Zipf(1.1) over 1,000,000, 15%% crawlers, clients from the whole IPv4 space, 205 referrers, 13 languages, ")
	fmt.Fprintf(&b, "5%% 404s; written as a proxy writes them (120-record batches, sealed by compaction). The run is the real `bin/mapreduce -once` ")
	fmt.Fprintf(&b, "against 16 real proxy admin APIs on loopback and a local Postgres 15 primary (fsync on); the local-disk figures are the median of %d rounds of `go test -bench BenchmarkLocalSegments -benchtime 3x ./mapreduce/internal/aggregate/`, each ratio the median of the rounds' ratios.\n", benchRounds)
	body := b.String()
	fmt.Println()
	fmt.Println(body)
	if err := report.Write(filepath.Join(results, report.Today()+"-mapreduce.md"), readme, "mapreduce-bench", body); err != nil {
		return err
	}
	if len(baseMerge) > 0 {
		fmt.Printf("mapreducebench: merge window vs baseline: %.3f (%.2f s against %.2f s and %.2f s); new-rows window vs baseline: %.3f\n",
			tookM.Seconds()/((baseMerge[0]+baseMerge[len(baseMerge)-1])/2), tookM.Seconds(), baseMerge[0], baseMerge[len(baseMerge)-1],
			took.Seconds()/((baseTook[0]+baseTook[len(baseTook)-1])/2))
		fmt.Printf("mapreducebench: merge window between checkpoints vs baseline: %.3f (%.2f s against %.2f s and %.2f s)\n",
			tookB.Seconds()/((baseBetween[0]+baseBetween[len(baseBetween)-1])/2), tookB.Seconds(), baseBetween[0], baseBetween[len(baseBetween)-1])
	}
	report.PrintHeadlines(os.Stdout,
		report.Headline{Name: "mapreduce_vs_decode", Value: ratios["aggregate"]},
		report.Headline{Name: "aggregate_mrecords_per_s", Value: rates["aggregate"] / 1e6},
		report.Headline{Name: "window_3m_seconds", Value: took.Seconds()},
		report.Headline{Name: "window_3m_merge_seconds", Value: tookM.Seconds()},
		report.Headline{Name: "window_3m_merge_between_checkpoints_seconds", Value: tookB.Seconds()})
	return nil
}

// floorTimes is what Postgres alone takes to insert a run's rows.
type floorTimes struct{ hours, days, commit time.Duration }

func (f floorTimes) total() time.Duration { return f.hours + f.days + f.commit }

// insertFloor times Postgres inserting the rows the run wrote once more,
// server-side, into tables like theirs: no client, no encoding, no
// network, only the heap, the indexes, the checks and the WAL.
func insertFloor(ctx context.Context, dsn string) (floorTimes, error) {
	var f floorTimes
	var err error
	f.commit, err = serverSide(ctx, dsn,
		[]string{`CREATE TABLE floor_hours (LIKE clicks_hourly INCLUDING ALL)`, `CREATE TABLE floor_days (LIKE link_daily INCLUDING ALL)`},
		[]timedStep{
			{&f.hours, `INSERT INTO floor_hours SELECT * FROM clicks_hourly ORDER BY link_id, hour`},
			{&f.days, `INSERT INTO floor_days SELECT * FROM link_daily ORDER BY link_id, day`},
		})
	if err != nil {
		return f, fmt.Errorf("floor: %w", err)
	}
	say("Postgres alone inserting the run's rows: hours %s, days %s, commit %s", f.hours.Round(time.Millisecond), f.days.Round(time.Millisecond), f.commit.Round(time.Millisecond))
	return f, nil
}

// mergeFloorTimes is what Postgres alone takes for the merge case's write.
type mergeFloorTimes struct{ read, hours, days, commit time.Duration }

func (f mergeFloorTimes) total() time.Duration { return f.read + f.hours + f.days + f.commit }

// mergeFloor times Postgres doing, server-side, what a merge run asks of
// it, on the tables the merge runs left: the window's rows (those after
// the history's days) copied aside first, then, right after a
// checkpoint and in one transaction, the stored daily rows read in key
// order, the hourly rows added to the stored, and the daily rows written
// over the stored, the joins through the primary keys as the run's.
func mergeFloor(ctx context.Context, dsn string, history int) (mergeFloorTimes, error) {
	var f mergeFloorTimes
	var err error
	f.commit, err = serverSide(ctx, dsn,
		[]string{
			fmt.Sprintf(`CREATE TEMP TABLE window_days AS SELECT * FROM link_daily WHERE day >= (SELECT min(day) FROM link_daily) + %d ORDER BY link_id, day`, history),
			fmt.Sprintf(`CREATE TEMP TABLE window_hours AS SELECT * FROM clicks_hourly WHERE hour >= ((SELECT min(day) FROM link_daily) + %d)::timestamp AT TIME ZONE 'UTC' ORDER BY link_id, hour`, history),
			`CHECKPOINT`,
		},
		[]timedStep{
			{nil, `SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off`},
			// Every column of every row read out, as the run reads them.
			{&f.read, `SELECT count(*), sum(d.clicks + d.bot_clicks + length(d.uniques) + octet_length(d.dims::text)) FROM window_days w JOIN link_daily d USING (link_id, day)`},
			{&f.hours, `INSERT INTO clicks_hourly (link_id, hour, clicks, bot_clicks) SELECT link_id, hour, clicks, bot_clicks FROM window_hours
				ON CONFLICT (link_id, hour) DO UPDATE SET clicks = clicks_hourly.clicks + EXCLUDED.clicks, bot_clicks = clicks_hourly.bot_clicks + EXCLUDED.bot_clicks`},
			{&f.days, `UPDATE link_daily d SET clicks = w.clicks, bot_clicks = w.bot_clicks, uniques = w.uniques, dims = w.dims FROM window_days w WHERE d.link_id = w.link_id AND d.day = w.day`},
		})
	if err != nil {
		return f, fmt.Errorf("merge floor: %w", err)
	}
	say("Postgres alone, the merge case: read %s, hours %s, days %s, commit %s", f.read.Round(time.Millisecond), f.hours.Round(time.Millisecond), f.days.Round(time.Millisecond), f.commit.Round(time.Millisecond))
	return f, nil
}

// timedStep is a statement of serverSide's transaction; took, if set,
// receives how long it ran.
type timedStep struct {
	took *time.Duration
	sql  string
}

// serverSide runs setup on one connection to dsn, then steps in one
// transaction, each timed, and returns how long the commit took.
func serverSide(ctx context.Context, dsn string, setup []string, steps []timedStep) (time.Duration, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	for _, q := range setup {
		if _, err := conn.Exec(ctx, q); err != nil {
			return 0, err
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	for _, st := range steps {
		t := time.Now()
		if _, err := tx.Exec(ctx, st.sql); err != nil {
			return 0, err
		}
		if st.took != nil {
			*st.took = time.Since(t)
		}
	}
	t := time.Now()
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return time.Since(t), nil
}

// addHistory stores days earlier days' stats: the rows the window wrote,
// copied to each of the days before theirs, then vacuumed and analysed,
// as a table that has held them a while is.
func addHistory(ctx context.Context, dsn string, days int) (time.Duration, int64, error) {
	t := time.Now()
	for _, q := range []string{
		// A window that spans midnight has rows on two days: the later
		// day's copies onto the earlier are left out.
		fmt.Sprintf(`INSERT INTO link_daily SELECT link_id, day - g, clicks, bot_clicks, uniques, dims FROM link_daily, generate_series(1, %d) g ORDER BY link_id, day - g ON CONFLICT DO NOTHING`, days),
		fmt.Sprintf(`INSERT INTO clicks_hourly SELECT link_id, hour - g * interval '1 day', clicks, bot_clicks FROM clicks_hourly, generate_series(1, %d) g ORDER BY link_id, hour - g * interval '1 day' ON CONFLICT DO NOTHING`, days),
		`VACUUM ANALYZE link_daily`, `VACUUM ANALYZE clicks_hourly`,
	} {
		if _, err := pgExec(ctx, dsn, q); err != nil {
			return 0, 0, fmt.Errorf("history: %w", err)
		}
	}
	var rows int64
	err := pgQueryRow(ctx, dsn, `SELECT (SELECT count(*) FROM link_daily) + (SELECT count(*) FROM clicks_hourly)`, &rows)
	return time.Since(t), rows, err
}

// holdAcks makes the proxies ignore acknowledgements while set: the
// baseline's run and this build's each find the whole window pending.
var holdAcks atomic.Bool

// heldIndex is a proxy's index whose acknowledgements holdAcks can hold.
type heldIndex struct{ ship.Index }

func (h heldIndex) MarkIngested(names []string) error {
	if holdAcks.Load() {
		return nil
	}
	return h.Index.MarkIngested(names)
}

// pgExec runs one statement on dsn's database.
func pgExec(ctx context.Context, dsn, sql string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, sql)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", sql, err)
	}
	return tag.RowsAffected(), nil
}

// pgQueryRow scans one row of sql on dsn's database into dest.
func pgQueryRow(ctx context.Context, dsn, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 25432
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
