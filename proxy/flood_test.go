package main

import (
	"context"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/sql/codes"
)

// TestRandomCodeFlood runs the real proxy binary on a replica and floods
// it with random valid codes from 8 keep-alive connections for 3 s, as a
// scanner would: every one is a 404, and the proxy's own metrics show
// that none reached the replica or the primary (their ids are far above
// anything issued, which the proxy knows from its watermark).
func TestRandomCodeFlood(t *testing.T) {
	bin := bintest.Build(t, "shortfleet/proxy")
	ctx := context.Background()
	primary, pdb := pgcluster.StartTestDatabase(t)
	if _, err := pdb.Exec(ctx, `WITH u AS (INSERT INTO users (email, password_hash) VALUES ('t@example.com', 'x') RETURNING id)
		INSERT INTO links (user_id, target) SELECT id, 'https://example.com/' FROM u`); err != nil {
		t.Fatal(err)
	}
	replica := pgcluster.StartTestReplica(t, primary, "replica")
	key, token := []byte("flood-test-key-0123456"), pgcluster.RandomSecret(16)
	codec, _ := codes.New(key)
	cmd := exec.Command(bin, "-id", "proxy-f", "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-log-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "SHORTFLEET_CODE_KEY="+hex.EncodeToString(key), "SHORTFLEET_ADMIN_TOKEN="+token,
		"SHORTFLEET_REPLICA_DSN="+replica.DSN("shortfleet"), "SHORTFLEET_PRIMARY_DSN="+primary.DSN("shortfleet"))
	p := start(t, cmd)
	metrics := func() map[string]float64 {
		t.Helper()
		m := map[string]float64{}
		for _, l := range strings.Split(scrapeMetrics(t, p.urls["admin"], token), "\n") {
			if i := strings.LastIndexByte(l, ' '); i > 0 && !strings.HasPrefix(l, "#") {
				v, _ := strconv.ParseFloat(l[i+1:], 64)
				m[l[:i]] = v
			}
		}
		return m
	}
	before := metrics()
	watermark := int64(before["shortfleet_proxy_link_watermark"])

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var sent, not404, near atomic.Int64
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			for time.Now().Before(deadline) {
				id := 1 + rng.Int64N(codes.MaxID)
				if id <= watermark+1_000_000 {
					near.Add(1) // could exist, or be created any moment: may be looked up
				}
				code, _ := codec.Encode(id)
				resp, err := client.Get(p.urls["redirect"] + "/" + code)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
				if resp.StatusCode != 404 {
					not404.Add(1)
				}
			}
		})
	}
	start := time.Now()
	wg.Wait()
	took := time.Since(start)
	after := metrics()
	d := func(name string) float64 { return after[name] - before[name] }
	n := sent.Load()
	t.Logf("%d random codes in %s: %.0f/s; replica lookups %.0f, replica queries %.0f, primary asks %.0f, window rejections %.0f (watermark %d)",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), d(`shortfleet_proxy_lookups_total{outcome="replica"}`),
		d("shortfleet_proxy_replica_batches_total"), d("shortfleet_proxy_primary_asks_total"), d("shortfleet_proxy_window_rejections_total"), watermark)
	if not404.Load() != 0 {
		t.Fatalf("%d random codes were not 404", not404.Load())
	}
	if got := d(`shortfleet_proxy_requests_total{status="404"}`); got != float64(n) {
		t.Fatalf("the proxy counted %v 404s, the clients %d", got, n)
	}
	if r, q, a := d(`shortfleet_proxy_lookups_total{outcome="replica"}`), d("shortfleet_proxy_replica_batches_total"), d("shortfleet_proxy_primary_asks_total"); r > float64(near.Load()) || q > float64(near.Load()) || a > float64(near.Load()) {
		t.Fatalf("random codes reached the databases: %v replica lookups, %v replica queries, %v primary asks; %d codes were near issued ids", r, q, a, near.Load())
	}
	if w := d("shortfleet_proxy_window_rejections_total"); w < float64(n-near.Load()) {
		t.Fatalf("%v window rejections for %d codes", w, n)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("proxy exited with %v", err)
	}
}
