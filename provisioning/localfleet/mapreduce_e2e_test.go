package localfleet_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shortfleet/logfmt"
	"shortfleet/provisioning/localfleet"
)

const (
	chromeUA    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	googlebotUA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

type hourKey struct {
	link string // code
	hour time.Time
}

type counts struct{ clicks, bots int64 }

// traffic sends n redirects spread over the proxies and links, a third of
// them as Googlebot, plus a 404 every tenth request.
func traffic(t *testing.T, f *localfleet.Fleet, links []link, n int, seed uint64) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	rng := rand.New(rand.NewPCG(seed, 1))
	urls := f.RedirectURLs()
	for i := range n {
		path := "/" + links[rng.IntN(len(links))].Code
		if i%10 == 9 {
			path = "/no-such-link"
		}
		req, _ := http.NewRequest("GET", urls[i%len(urls)]+path, nil)
		ua := chromeUA
		if i%3 == 0 {
			ua = googlebotUA
		}
		req.Header.Set("User-Agent", ua)
		req.Header.Set("Referer", "https://news.example/")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// logged counts, from every sealed segment on the proxies' disks, the
// clicks per link and hour and how many were Googlebot's.
func logged(t *testing.T, f *localfleet.Fleet, n int, codeOf map[int64]string) map[hourKey]counts {
	t.Helper()
	out := map[hourKey]counts{}
	for i := range n {
		entries, err := logfmt.ReadManifest(f.ProxyLogDir(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			fh, err := os.Open(filepath.Join(f.ProxyLogDir(i), e.Name))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := logfmt.ReadAll(fh)
			fh.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.LinkID == 0 || !logfmt.IsRedirect(r.Status) {
					continue
				}
				k := hourKey{codeOf[r.LinkID], time.Unix(0, r.Time).UTC().Truncate(time.Hour)}
				c := out[k]
				c.clicks++
				if r.UserAgent == googlebotUA {
					c.bots++
				}
				out[k] = c
			}
		}
	}
	return out
}

// statsOf reads clicks_hourly from the primary.
func statsOf(t *testing.T, f *localfleet.Fleet, codeOf map[int64]string) map[hourKey]counts {
	t.Helper()
	ctx := context.Background()
	conn, err := f.Primary.Connect(ctx, localfleet.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT link_id, hour, clicks, bot_clicks FROM clicks_hourly`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[hourKey]counts{}
	for rows.Next() {
		var id int64
		var h time.Time
		var c counts
		if err := rows.Scan(&id, &h, &c.clicks, &c.bots); err != nil {
			t.Fatal(err)
		}
		out[hourKey{codeOf[id], h.UTC()}] = c
	}
	return out
}

func sameCounts(t *testing.T, got, want map[hourKey]counts) {
	t.Helper()
	var total int64
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("link %s hour %s: stats %+v, logged %+v", k.link, k.hour, got[k], w)
		}
		total += w.clicks
	}
	if len(got) != len(want) {
		t.Fatalf("stats have %d link-hours, the logs %d", len(got), len(want))
	}
	t.Logf("stats equal the logs: %d clicks over %d link-hours", total, len(want))
}

// setupLinks signs up and creates n links; it returns them and a map from
// link id to code, read from the primary.
func setupLinks(t *testing.T, f *localfleet.Fleet, n int) ([]link, map[int64]string) {
	t.Helper()
	base := f.PrimaryURL()
	var acct struct {
		APIKey string `json:"api_key"`
	}
	if code := api(t, "POST", base+"/api/signup", "", map[string]string{"email": "mr@example.com", "password": "a long enough password"}, &acct); code != 201 {
		t.Fatalf("signup: %d", code)
	}
	links := make([]link, n)
	for i := range links {
		if code := api(t, "POST", base+"/api/links", acct.APIKey, map[string]any{"target": fmt.Sprintf("https://example.com/%d", i)}, &links[i]); code != 201 {
			t.Fatalf("create link: %d", code)
		}
	}
	ctx := context.Background()
	conn, err := f.Primary.Connect(ctx, localfleet.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT id FROM links ORDER BY id`)
	codeOf := map[int64]string{}
	i := 0
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		codeOf[id] = links[i].Code
		i++
	}
	return links, codeOf
}

var stageRE = regexp.MustCompile(`msg="stage (\w+)"`)

// crashStages are the moments the crash test kills a run at: start-up,
// then each stage boundary the job logs (and holds with -stage-pause).
var crashStages = []string{"started", "listed", "mapped", "reduced", "written", "committed"}

// TestMapreduceCrashExactlyOnce kills `mapreduce -once` with SIGKILL at
// random moments, over and over while traffic keeps coming, then runs it
// once cleanly: the stats equal exactly what the proxies logged, per link
// and per hour, bots included.
func TestMapreduceCrashExactlyOnce(t *testing.T) {
	t.Parallel() // functional, not timed: three at a time (make test -parallel 3), after the timed drills, to keep make test under 20 minutes
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	f := startFleet(t, 2, "-seal-age", "150ms", "-flush-interval", "20ms")
	links, codeOf := setupLinks(t, f, 40)
	if err := f.WaitReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	traffic(t, f, links, 3000, 1)
	rng := rand.New(rand.NewPCG(42, 42))
	stagesSeen := map[string]int{}
	const kills = 24
	for i := range kills {
		traffic(t, f, links, 300, uint64(i+2))
		time.Sleep(200 * time.Millisecond) // let the proxies seal what they have
		cmd := f.Command(ctx, "mapreduce", "-once", "-stage-pause", "250ms", "-proxies", strings.Join(f.AdminURLs(), ","))
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Each kill aims at a stage, in turn, and lands at a random moment
		// of its 250 ms hold: spread over the stages however slowly the
		// binary starts on a loaded machine.
		target := crashStages[i%len(crashStages)]
		reached := make(chan struct{})
		var mu sync.Mutex
		last := "started"
		done := make(chan struct{})
		go func() {
			if target == "started" {
				close(reached)
			}
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if m := stageRE.FindStringSubmatch(sc.Text()); m != nil {
					mu.Lock()
					last = m[1]
					mu.Unlock()
					if m[1] == target {
						close(reached)
					}
				}
			}
			close(done)
		}()
		select {
		case <-reached:
		case <-done: // it ended before the stage: the kill finds it gone
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		time.Sleep(time.Duration(rng.IntN(240)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		<-done
		mu.Lock()
		stagesSeen[last]++
		mu.Unlock()
	}
	t.Logf("last stage reached before SIGKILL, over %d kills: %v", kills, stagesSeen)
	if len(stagesSeen) < 5 {
		t.Fatalf("kills hit only %v: not spread over the stages", stagesSeen)
	}
	// Seal everything, then one clean run.
	for _, p := range f.Proxies {
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx, "redirect", "admin"); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := f.MapreduceOnce(ctx); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	sameCounts(t, statsOf(t, f, codeOf), logged(t, f, 2, codeOf))
}

// TestMapreduceProxyDown: a run with one proxy down counts the other's
// clicks; the next run, with it back, catches up: exact again.
func TestMapreduceProxyDown(t *testing.T) {
	t.Parallel() // functional, not timed: three at a time (make test -parallel 3), after the timed drills, to keep make test under 20 minutes
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := startFleet(t, 2)
	links, codeOf := setupLinks(t, f, 10)
	if err := f.WaitReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	traffic(t, f, links, 2000, 7)
	for _, p := range f.Proxies {
		if err := p.Stop(); err != nil { // seal
			t.Fatal(err)
		}
	}
	if err := f.Proxies[0].Start(ctx, "redirect", "admin"); err != nil {
		t.Fatal(err)
	}
	out, err := f.MapreduceOnce(ctx)
	if err != nil || !strings.Contains(out, "proxies_down=1") {
		t.Fatalf("run with proxy-02 down: %v\n%s", err, out)
	}
	onlyFirst := logged(t, f, 1, codeOf)
	sameCounts(t, statsOf(t, f, codeOf), onlyFirst)
	if err := f.Proxies[1].Start(ctx, "redirect", "admin"); err != nil {
		t.Fatal(err)
	}
	if out, err := f.MapreduceOnce(ctx); err != nil || !strings.Contains(out, "proxies_down=0") {
		t.Fatalf("run with both up: %v\n%s", err, out)
	}
	sameCounts(t, statsOf(t, f, codeOf), logged(t, f, 2, codeOf))
}
