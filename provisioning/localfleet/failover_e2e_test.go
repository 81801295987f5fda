package localfleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shortfleet/provisioning/localfleet"
)

// creations creates links through the API until stopped, keeping every one
// the API acknowledged and counting refusals by status.
type creations struct {
	mu     sync.Mutex
	acked  []link
	status map[int]int // HTTP status (0: no answer) -> count
	stop   chan struct{}
	done   chan struct{}
}

func startCreations(t *testing.T, base, key string) *creations {
	cr := &creations{status: map[int]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(cr.done)
		for n := 0; ; n++ {
			select {
			case <-cr.stop:
				return
			case <-time.After(20 * time.Millisecond): // under the per-account rate limit
			}
			target := fmt.Sprintf("https://example.com/drill/%d", n)
			var l link
			code := postJSON(client, base+"/api/links", key, fmt.Sprintf(`{"target":%q}`, target), &l)
			cr.mu.Lock()
			cr.status[code]++
			if code == http.StatusCreated {
				cr.acked = append(cr.acked, l)
			}
			cr.mu.Unlock()
		}
	}()
	return cr
}

func (cr *creations) count(status int) int {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.status[status]
}

func (cr *creations) end() {
	close(cr.stop)
	<-cr.done
}

// postJSON posts body and decodes a 2xx answer into out; it returns the
// status, or 0 when no answer came.
func postJSON(client *http.Client, url, key, body string, out any) int {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 && out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return -1
		}
	}
	return resp.StatusCode
}

// TestBalancerAndFailover is the failover drill of the provisioning issue,
// on a fleet of 3 proxies behind HAProxy with synchronous replication:
//
//  1. a proxy is SIGKILLed under redirect load: clients see no failure
//     (HAProxy retries on another proxy) and the restarted proxy rejoins;
//  2. the primary database is SIGKILLed under redirect and creation load:
//     redirects keep succeeding, creations answer 503 until a replica is
//     promoted through the playbook's code path (package failover), then
//     succeed; no acknowledged link is missing and the other replicas
//     follow the new primary.
func TestBalancerAndFailover(t *testing.T) {
	if !localfleet.HAProxyInstalled() {
		t.Fatal("haproxy is not installed: make test installs it (provisioning/deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := startFleetWith(t, localfleet.Config{Proxies: 3, ProxyArgs: []string{"-flush-interval", "50ms"}})
	lb := f.BalancerURL()
	if lb == "" {
		t.Fatal("the fleet started no load balancer")
	}
	base := f.PrimaryURL()
	key, links := signupWithLinks(t, base, "drill@example.com", 50, "https://example.com/lb/%d")

	// 1. A proxy killed under load.
	tr := startClients(lb, links, 4)
	tr.waitMore(t, ctx, 500)
	p := f.Proxies[1].Process()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, func() bool { return p.Restarts() == 1 })
	if err := f.WaitBalanced(ctx, 3); err != nil {
		t.Fatal(err)
	}
	tr.waitMore(t, ctx, 500)
	tr.end(t, "proxy-02 SIGKILLed and restarted")

	// 2. The primary database killed under load.
	tr = startClients(lb, links, 4)
	cr := startCreations(t, base, key)
	waitUntil(t, ctx, func() bool { return cr.count(http.StatusCreated) >= 20 })
	killed := time.Now()
	f.Primary.Kill()
	waitUntil(t, ctx, func() bool { return cr.count(http.StatusServiceUnavailable) >= 5 })
	tr.waitMore(t, ctx, 500) // redirects go on with the primary down
	res, err := f.Promote(ctx)
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	promoted := time.Now()
	createdBefore := cr.count(http.StatusCreated)
	waitUntil(t, ctx, func() bool { return cr.count(http.StatusCreated) >= createdBefore+20 })
	recovered := time.Now()
	tr.waitMore(t, ctx, 500)
	cr.end()
	tr.end(t, "primary SIGKILLed, replica promoted")
	t.Logf("promoted %s (followers %v) %s after the kill; creations succeeded again %s after the promotion",
		res.Primary, res.Followers, promoted.Sub(killed).Round(time.Millisecond), recovered.Sub(promoted).Round(time.Millisecond))
	cr.mu.Lock()
	t.Logf("creations by status: %v; acknowledged %d", cr.status, len(cr.acked))
	for status, n := range cr.status {
		if status != http.StatusCreated && status != http.StatusServiceUnavailable {
			t.Errorf("%d creations answered %d: only 201 and 503 are expected", n, status)
		}
	}
	acked := cr.acked
	cr.mu.Unlock()
	if len(res.Followers) != 2 {
		t.Fatalf("followers %v, want the other 2 replicas", res.Followers)
	}

	// Every acknowledged link is on the new primary, and has reached the
	// followers, through every proxy.
	if err := f.WaitReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := f.Primary.Connect(ctx, localfleet.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var missing int
	for _, l := range acked {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM links WHERE target = $1`, l.Target).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged links are missing on the new primary", missing, len(acked))
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, u := range f.RedirectURLs() {
		for _, l := range acked[len(acked)-5:] {
			resp, err := client.Get(u + "/" + l.Code)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != l.Target {
				t.Fatalf("%s/%s after failover: %d %q", u, l.Code, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
	// The followers stream the new primary's timeline.
	for _, r := range f.Replicas {
		if r == f.Primary {
			continue
		}
		rc, err := r.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		var tli int
		err = rc.QueryRow(ctx, `SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming'`).Scan(&tli)
		rc.Close(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", r.Name(), err)
		}
		if tli < 2 {
			t.Fatalf("%s streams timeline %d, want the new primary's (2)", r.Name(), tli)
		}
	}
}
