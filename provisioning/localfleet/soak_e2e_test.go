package localfleet_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shortfleet/provisioning/localfleet"
)

// soakProcess is one process the soak watches.
type soakProcess struct {
	name string
	pid  func() int
	rss  []int64 // kB, one a sample
	fds  []int
}

// sample reads a process's resident memory and open descriptors.
func (p *soakProcess) sample() error {
	pid := p.pid()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err
	}
	var rss int64
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return err
	}
	p.rss, p.fds = append(p.rss, rss), append(p.fds, len(fds))
	return nil
}

// median is the middle of s.
func median[T int | int64](s []T) T {
	c := slices.Clone(s)
	slices.Sort(c)
	return c[len(c)/2]
}

// TestSoak runs the fleet under steady redirect and creation traffic
// through HAProxy for $SHORTFLEET_SOAK (`make soak`: 30m), sampling every
// process's resident memory and open descriptors, then checks that memory
// stayed flat (the last quarter's median within 20% + 16 MiB of the second
// quarter's: the first is warm-up), that no process gained descriptors,
// and that the stats equal the proxies' logs exactly, with no click lost.
// It is skipped unless SHORTFLEET_SOAK is set: it is too long for CI. The
// binaries are then built without the race detector, whose shadow memory
// would hide a leak or fake one.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SHORTFLEET_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set SHORTFLEET_SOAK (make soak) to run the soak")
	}
	if !localfleet.HAProxyInstalled() {
		t.Fatal("haproxy is not installed: make test installs it (provisioning/deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Minute)
	defer cancel()
	f := startFleetWith(t, localfleet.Config{
		Proxies: 3, Schedule: "@every 1m",
		ProxyArgs: []string{"-seal-age", "10s"},
	})
	base := f.PrimaryURL()
	key, links := signupWithLinks(t, base, "soak@example.com", 100, "https://example.com/soak/%d")
	codec := fleetCodec(t, f)
	codeOf := map[int64]string{}
	for _, l := range links {
		id, err := codec.DecodeString(l.Code)
		if err != nil {
			t.Fatal(err)
		}
		codeOf[id] = l.Code
	}
	procs := []*soakProcess{
		{name: "primary app", pid: func() int { return f.PrimaryApp.Process().Pid() }},
		{name: "mapreduce", pid: func() int { return f.Mapreduce.Process().Pid() }},
		{name: "haproxy", pid: func() int { return f.HAProxy().Pid() }},
		{name: "postgres primary", pid: func() int { return f.Primary.Process().Pid() }},
	}
	for i, p := range f.Proxies {
		procs = append(procs, &soakProcess{name: p.Name, pid: func() int { return p.Process().Pid() }},
			&soakProcess{name: "postgres " + localfleet.ProxyID(i), pid: func() int { return f.Replicas[i].Process().Pid() }})
	}
	restarts := func() (n int) {
		for _, p := range append([]*localfleet.App{f.PrimaryApp, f.Mapreduce}, f.Proxies...) {
			n += p.Process().Restarts()
		}
		return n
	}

	// Steady, not flat out: about 800 redirects a second.
	cc := &clientCounts{url: f.BalancerURL(), links: links, clients: 4, ok: make([]atomic.Int64, len(links)), pace: 5 * time.Millisecond}
	cc.resume()
	cr := startCreations(t, base, key)
	began := time.Now()
	tick := time.NewTicker(max(d/120, time.Second))
	for time.Since(began) < d {
		<-tick.C
		for _, p := range procs {
			if err := p.sample(); err != nil {
				t.Fatalf("sample %s: %v", p.name, err)
			}
		}
	}
	tick.Stop()
	restarted := restarts()
	cc.pause()
	cr.end()
	if err := f.Mapreduce.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Proxies {
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx, "redirect", "admin"); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := f.MapreduceOnce(ctx); err != nil {
		t.Fatalf("last mapreduce run: %v\n%s", err, out)
	}

	// report is the soak's log, which `make soak` puts into README.md.
	var report strings.Builder
	logf := func(format string, args ...any) {
		t.Logf(format, args...)
		fmt.Fprintf(&report, format+"\n", args...)
	}
	defer func() {
		if path := os.Getenv("SHORTFLEET_SOAK_REPORT"); path != "" && !t.Failed() {
			if err := os.WriteFile(path, []byte("```\n"+report.String()+"```\n"), 0o644); err != nil {
				t.Error(err)
			}
		}
	}()
	ok := cc.answered()
	logf("soak of %s: %d redirects answered (%.0f/s), %d failed, %d links created, %d processes restarted",
		d, ok, float64(ok)/d.Seconds(), cc.failed.Load(), cr.count(http.StatusCreated), restarted)
	if n := cc.failed.Load(); n != 0 {
		t.Errorf("%d redirects failed: %v", n, cc.firstFails)
	}
	if restarted != 0 {
		t.Errorf("%d processes restarted during the soak", restarted)
	}
	cr.mu.Lock()
	acked := cr.acked
	cr.mu.Unlock()
	if n := missingLinks(t, f, acked); n != 0 {
		t.Errorf("%d of %d acknowledged links missing", n, len(acked))
	}
	for _, p := range procs {
		q := len(p.rss) / 4
		if q == 0 {
			t.Fatalf("%s: too few samples", p.name)
		}
		second, last := median(p.rss[q:2*q]), median(p.rss[3*q:])
		fdFirst, fdLast := median(p.fds[q:2*q]), median(p.fds[3*q:])
		logf("%-18s RSS median %6d kB in the second quarter, %6d kB in the last; descriptors %d -> %d", p.name, second, last, fdFirst, fdLast)
		if last > second*12/10+16<<10 {
			t.Errorf("%s: memory grew from %d to %d kB", p.name, second, last)
		}
		if fdLast > fdFirst+8 {
			t.Errorf("%s: descriptors grew from %d to %d", p.name, fdFirst, fdLast)
		}
	}
	onDisk := map[hourKey]counts{}
	for i := range f.Proxies {
		addLogged(t, f.ProxyLogDir(i), "", codeOf, onDisk)
	}
	got := statsOf(t, f, codeOf)
	var diskTotal int64
	for k, w := range onDisk {
		diskTotal += w.clicks
		if got[k].clicks != w.clicks {
			t.Errorf("link %s hour %s: stats %d, logs %d", k.link, k.hour, got[k].clicks, w.clicks)
		}
	}
	if diskTotal != ok {
		t.Errorf("%d redirects answered, %d on the proxies' disks: want equal (SIGTERM loses nothing)", ok, diskTotal)
	}
}
