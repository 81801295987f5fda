// Package ingest measures the mapreduce job on a window of access logs as
// proxies write them: it writes sealed segments for a number of proxies
// with logfmt/logfmttest's realistic records, serves each proxy's folder
// through the real segment API (logfmt/ship, as a proxy's admin listener
// mounts it), times `mapreduce -once` against them, and times the Arrow
// reader merely decoding the same segments, the baseline.
package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"shortfleet/logfmt"
	"shortfleet/logfmt/logfmttest"
	"shortfleet/logfmt/ship"
)

// Token is the admin bearer token the served proxies expect.
const Token = "bench-ingest-token"

// Window is a five-minute window of logs, on disk and served.
type Window struct {
	Dirs     []string // one per proxy
	URLs     []string // the proxies' admin origins
	Records  int64
	Segments int
	Bytes    int64 // sealed, compressed
	closers  []func()
}

// Close stops serving and closes the writers.
func (w *Window) Close() {
	for _, c := range w.closers {
		c()
	}
}

// Write writes records spread over proxies, perProxy segments each (one a
// minute of a five-minute window that ended ten minutes ago), under dir,
// links drawn Zipf-skewed over links ids, and serves them on 127.0.0.1.
// Prefix names the proxies, so windows written for the same database
// never share a segment ledger entry.
func Write(dir, prefix string, proxies, records, perProxy int, links int64, logger *slog.Logger) (*Window, error) {
	w := &Window{}
	start := time.Now().UTC().Truncate(5 * time.Minute).Add(-10 * time.Minute)
	for p := range proxies {
		id := fmt.Sprintf("%s-%02d", prefix, p+1)
		pdir := filepath.Join(dir, id)
		lw, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: pdir, Proxy: id, FlushRows: 120, FlushInterval: time.Hour, SealAge: time.Hour, QueueBatches: 4096}, logger)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.closers = append(w.closers, func() { lw.Close() })
		n := records / proxies
		g := logfmttest.New(uint64(p), links, start, 5*time.Minute)
		var r logfmt.Record
		for i := range n {
			g.Next(&r, i, n)
			lw.Append(&r)
			if (i+1)%max(n/perProxy, 1) == 0 {
				lw.Rotate()
			}
		}
		lw.Rotate()
		for _, e := range lw.Pending() {
			w.Bytes += e.Bytes
			w.Records += e.Rows
			w.Segments++
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			w.Close()
			return nil, err
		}
		srv := &http.Server{Handler: ship.Handler(ship.Folder{Proxy: id, Dir: pdir, Index: lw}, ship.RequireBearer(Token), logger)}
		go srv.Serve(ln)
		w.closers = append(w.closers, func() { srv.Close() })
		w.Dirs = append(w.Dirs, pdir)
		w.URLs = append(w.URLs, "http://"+ln.Addr().String())
	}
	return w, nil
}

// Decode reads every sealed segment of the window into memory, then
// decodes them all with the Arrow reader on every core, counting rows, as
// BenchmarkLocalSegments' "decode" does; it returns records per second of
// the decoding alone.
func (w *Window) Decode() (float64, error) {
	var segs [][]byte
	for _, d := range w.Dirs {
		entries, err := logfmt.ReadManifest(d)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(d, e.Name))
			if err != nil {
				return 0, err
			}
			segs = append(segs, data)
		}
	}
	next := make(chan []byte, len(segs))
	for _, s := range segs {
		next <- s
	}
	close(next)
	var n atomic.Int64
	var g errgroup.Group
	t := time.Now()
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			for data := range next {
				rd, err := logfmt.NewBytesReader(data)
				if err != nil {
					return err
				}
				for rd.Next() {
					n.Add(int64(rd.Batch().Len()))
				}
				rd.Release()
				if err := rd.Err(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("decode segments: %w", err)
	}
	took := time.Since(t)
	if n.Load() != w.Records {
		return 0, fmt.Errorf("decoded %d records, the manifests list %d", n.Load(), w.Records)
	}
	return float64(n.Load()) / took.Seconds(), nil
}

// Run is one `mapreduce -once`.
type Run struct {
	Took   time.Duration // wall, process start to exit
	Done   string        // the job's "run done" log line
	Stages string        // time between the job's stage log lines
}

var stageLineRE = regexp.MustCompile(`^time=(\S+) .*msg="stage (\w+)"`)

// Once runs the mapreduce binary once against the window, writing to the
// database at dsn.
func (w *Window) Once(ctx context.Context, mapreduceBin, dsn string) (Run, error) {
	cmd := exec.CommandContext(ctx, mapreduceBin, "-once", "-proxies", strings.Join(w.URLs, ","))
	cmd.Env = append(os.Environ(), "SHORTFLEET_DSN="+dsn, "SHORTFLEET_ADMIN_TOKEN="+Token,
		"SHORTFLEET_VISITOR_SALT=bench-salt-0123456789abcdef")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	t := time.Now()
	if err := cmd.Run(); err != nil {
		return Run{}, fmt.Errorf("mapreduce -once: %w\n%s", err, buf.String())
	}
	r := Run{Took: time.Since(t)}
	var stages []string
	var prev time.Time
	sc := bufio.NewScanner(io.Reader(&buf))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, `msg="run done"`) {
			r.Done = l
		}
		if m := stageLineRE.FindStringSubmatch(l); m != nil {
			at, _ := time.Parse(time.RFC3339Nano, m[1])
			if !prev.IsZero() {
				stages = append(stages, fmt.Sprintf("%s %.1f s", m[2], at.Sub(prev).Seconds()))
			}
			prev = at
		}
	}
	r.Stages = strings.Join(stages, ", ")
	if r.Done == "" {
		return r, fmt.Errorf("mapreduce -once logged no run done:\n%s", buf.String())
	}
	return r, nil
}

// Field reads key=value from the run's done line.
func (r Run) Field(key string) string {
	if m := regexp.MustCompile(`\b` + key + `=(\S+)`).FindStringSubmatch(r.Done); m != nil {
		return m[1]
	}
	return "?"
}
