package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"shortfleet/bench/internal/fill"
	"shortfleet/bench/internal/metrics"
)

// memory is what the proxy holds: its RSS idle and with its cache filled,
// and the Go benchmarks' bytes per cached link and per open segment row.
type memory struct {
	rssIdle, rssFilled        float64 // MiB
	entries, weighed, bound   float64
	asked                     int
	cachePerLink              float64 // heap bytes
	segmentPerRow             float64 // heap bytes, beyond the writer's fixed buffers
	segmentFixed, segmentFile float64
}

// measureMemory starts a proxy with -cache-bytes rssCacheBytes, reads its
// VmRSS, asks it for every code of codesFile once (each a replica lookup
// that fills the cache), and reads VmRSS again; then it runs the proxy's
// memory benchmarks.
func measureMemory(ctx context.Context, extra func(name string, port int, args ...string) (func(), error), pid func(string) int, host, codesFile, token string) (memory, error) {
	var m memory
	stop, err := extra("proxy-rss", 8085, "-cache-bytes", strconv.FormatInt(rssCacheBytes, 10))
	if err != nil {
		return m, err
	}
	defer stop()
	url := "http://" + net.JoinHostPort(host, "8085")
	// A few requests first, so the idle figure has the listener's and
	// the log writer's buffers.
	warm, err := os.CreateTemp("", "proxybench-warm-")
	if err != nil {
		return m, err
	}
	defer os.Remove(warm.Name())
	data, err := os.ReadFile(codesFile)
	if err != nil {
		return m, err
	}
	codes := strings.Fields(string(data))
	m.asked = len(codes)
	fmt.Fprintln(warm, strings.Join(codes[:min(100, len(codes))], "\n"))
	warm.Close()
	if _, err := fill.Codes(ctx, url, warm.Name(), 64); err != nil {
		return m, err
	}
	if m.rssIdle, err = rssMiB(pid("proxy-rss")); err != nil {
		return m, err
	}
	say("memory: asking a proxy with -cache-bytes %d for each of %d links once", rssCacheBytes, len(codes))
	bad, err := fill.Codes(ctx, url, codesFile, 64)
	if err != nil {
		return m, err
	}
	if bad > 0 {
		return m, fmt.Errorf("filling the RSS proxy's cache: %d answers were not redirects", bad)
	}
	if m.rssFilled, err = rssMiB(pid("proxy-rss")); err != nil {
		return m, err
	}
	sc, err := metrics.Scrape("http://"+net.JoinHostPort(host, "9085"), token)
	if err != nil {
		return m, err
	}
	m.entries, m.weighed, m.bound = sc["shortfleet_proxy_cache_entries"], sc["shortfleet_proxy_cache_bytes"], float64(rssCacheBytes)

	say("memory: go test -bench 'CacheBytesPerLink|SegmentBytesPerRow'")
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^(BenchmarkCacheBytesPerLink|BenchmarkSegmentBytesPerRow)$",
		"-benchtime", "500000x", "./proxy/internal/links/", "./proxy/internal/accesslog/").CombinedOutput()
	if err != nil {
		return m, fmt.Errorf("memory benchmarks: %w\n%s", err, out)
	}
	got := benchMetrics(out)
	m.cachePerLink, m.segmentPerRow = got["heap-bytes/link"], got["heap-bytes/row"]
	m.segmentFixed, m.segmentFile = got["fixed-heap-bytes"], got["file-bytes/row"]
	return m, nil
}

// benchMetrics reads the metrics of go test -bench output lines
// ("BenchmarkX-2  500000  954 ns/op  167.0 heap-bytes/link ...").
func benchMetrics(out []byte) map[string]float64 {
	got := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				got[f[i+1]] = v
			}
		}
	}
	return got
}

// rssMiB is a process's resident set size in MiB, from /proc/PID/status.
func rssMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func (m memory) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Memory. A proxy started with `-cache-bytes %d` (%.0f MiB) and full logging was asked for each of the %d seeded links once: "+
		"RSS **%.1f MiB** idle, **%.1f MiB** after, its cache holding %.0f links weighed at %.1f MiB of its %.0f MiB bound%s.\n",
		int64(m.bound), m.bound/(1<<20), m.asked, m.rssIdle, m.rssFilled, m.entries, m.weighed/(1<<20), m.bound/(1<<20), atBound(m))
	if m.weighed >= 0.9*m.bound && m.rssFilled > m.rssIdle {
		// RSS grows with the bound: the cache's heap, and the garbage
		// collector's headroom over it (GOGC=100: the heap may grow to
		// twice the live heap between collections).
		perBound := (m.rssFilled - m.rssIdle) / (m.bound / (1 << 20))
		links10M := 10e6 * m.weighed / max(m.entries, 1)
		fmt.Fprintf(&b, "RSS grows by **%.2f MiB a MiB of cache bound** (heap and the collector's headroom over it): at the default 256 MiB bound, by the same ratio, about %.0f MiB; 10 M links of this shape weigh %.0f MiB, so holding them all takes `-cache-bytes %d` and, by the same ratio, about %.0f MiB of RSS. `GOMEMLIMIT` bounds the headroom.\n",
			perBound, m.rssIdle+256*perBound, links10M/(1<<20), int64(links10M), m.rssIdle+perBound*links10M/(1<<20))
	}
	fmt.Fprintf(&b, "Go benchmarks (`go test -bench 'CacheBytesPerLink|SegmentBytesPerRow' ./proxy/internal/...`): a cached link of the seeded shape holds **%.0f bytes** of heap; "+
		"an open segment's row holds **%.1f bytes** of heap (its rows are on disk; the writer's column builders hold %.1f MiB whatever the rows) and %.0f bytes of file until it is sealed.\n",
		m.cachePerLink, m.segmentPerRow, m.segmentFixed/(1<<20), m.segmentFile)
	return b.String()
}

// atBound says whether the fill reached the cache's bound.
func atBound(m memory) string {
	if m.weighed >= 0.9*m.bound {
		return ": the cache full, the RSS its bound sets"
	}
	return ": below the bound, too few links seeded to fill it"
}
