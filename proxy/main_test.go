package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shortfleet/logfmt"
	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/proxy/internal/disktest"
	"shortfleet/sql/codes"
)

func TestMain(m *testing.M) { bintest.Main(m) }

var listenRE = regexp.MustCompile(`msg="listening on (http://[^"\s]+)".*\blistener=(\w+)`)

// TestStartsWithUnwritableLogFolder runs the real binary on a log folder it
// cannot write: it starts and redirects, /metrics shows the log closed and
// every record dropped; once the folder is writable the log opens by itself,
// and after SIGTERM the requests that followed are in sealed segments.
func TestStartsWithUnwritableLogFolder(t *testing.T) {
	bin := bintest.Build(t, "shortfleet/proxy")
	ctx := context.Background()
	primary, pdb := pgcluster.StartTestDatabase(t)
	var id int64
	if err := pdb.QueryRow(ctx, `WITH u AS (INSERT INTO users (email, password_hash) VALUES ('t@example.com', 'x') RETURNING id)
		INSERT INTO links (user_id, target) SELECT id, 'https://example.com/landing' FROM u RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	replica := pgcluster.StartTestReplica(t, primary, "replica")
	lsn, err := primary.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.WaitReplay(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	writable := disktest.Unwritable(t, logDir)

	key, token := []byte("main-test-key-0123456"), pgcluster.RandomSecret(16)
	codec, _ := codes.New(key)
	code, _ := codec.Encode(id)
	cmd := exec.Command(bin, "-id", "proxy-t", "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0",
		"-log-dir", logDir, "-log-retry-interval", "20ms")
	cmd.Env = append(os.Environ(), "SHORTFLEET_CODE_KEY="+hex.EncodeToString(key), "SHORTFLEET_ADMIN_TOKEN="+token,
		"SHORTFLEET_REPLICA_DSN="+replica.DSN("shortfleet"), "SHORTFLEET_PRIMARY_DSN="+primary.DSN("shortfleet"))
	p := start(t, cmd)
	urls := p.urls

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	redirect := func() {
		t.Helper()
		resp, err := client.Get(urls["redirect"] + "/" + code)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://example.com/landing" {
			t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	metric := func(name string) string {
		t.Helper()
		for _, l := range strings.Split(scrapeMetrics(t, urls["admin"], token), "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				return v
			}
		}
		t.Fatalf("metrics lack %s", name)
		return ""
	}
	const dropped, kept = 5, 3
	for range dropped {
		redirect()
	}
	if open, n := metric("shortfleet_proxy_log_open"), metric(`shortfleet_proxy_log_records_total{result="dropped"}`); open != "0" || n != fmt.Sprint(dropped) {
		t.Fatalf("log folder unwritable: log_open %s, dropped %s; want 0, %d", open, n, dropped)
	}
	// Every redirect is timed, logged or not (the record is filled, then
	// dropped).
	if n := metric("shortfleet_proxy_redirect_duration_seconds_count"); n != fmt.Sprint(dropped) {
		t.Fatalf("redirect_duration_seconds_count %s, want %d", n, dropped)
	}

	writable()
	deadline := time.Now().Add(30 * time.Second)
	for metric("shortfleet_proxy_log_open") != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("log did not open within 30s of the folder becoming writable\n%s", p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range kept {
		redirect()
	}
	if err := p.stop(); err != nil {
		t.Fatalf("proxy exited with %v\n%s", err, p.out.String())
	}
	entries, err := logfmt.ReadManifest(logDir)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, e := range entries {
		rows += e.Rows
	}
	if rows != kept {
		t.Fatalf("%d records sealed, want the %d answered after the folder became writable\n%s", rows, kept, p.out.String())
	}
}

// proc is a proxy started by a test.
type proc struct {
	cmd    *exec.Cmd
	urls   map[string]string // listener label -> URL
	out    procOutput
	exited chan struct{}
	err    error // how it exited, once exited is closed
}

// start starts cmd and waits until it reports its redirect and admin
// listeners. The process is killed when the test ends if it still runs.
func start(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	p.out.listening = make(chan struct{})
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.exited })
	select {
	case <-p.out.listening:
	case <-p.exited:
		t.Fatalf("proxy exited before listening: %v\n%s", p.err, p.out.String())
	case <-time.After(time.Minute):
		t.Fatalf("proxy did not report its listeners within a minute\n%s", p.out.String())
	}
	p.urls = p.out.listeners()
	return p
}

// stop sends SIGTERM and returns how the process exited.
func (p *proc) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	<-p.exited
	return p.err
}

// procOutput collects a process's output and notices when it has reported
// both its listeners.
type procOutput struct {
	mu        sync.Mutex
	buf       strings.Builder
	listening chan struct{}
	closed    bool
}

func (o *procOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(b)
	if !o.closed && len(o.listenersLocked()) == 2 {
		close(o.listening)
		o.closed = true
	}
	return len(b), nil
}

func (o *procOutput) listenersLocked() map[string]string {
	urls := map[string]string{}
	for _, m := range listenRE.FindAllStringSubmatch(o.buf.String(), -1) {
		urls[m[2]] = m[1]
	}
	return urls
}

func (o *procOutput) listeners() map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.listenersLocked()
}

func (o *procOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// scrapeMetrics returns the proxy's Prometheus text from its admin API.
func scrapeMetrics(t *testing.T, adminURL, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", adminURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestRefusesEmptyAdminToken starts the real binary with
// SHORTFLEET_ADMIN_TOKEN empty or unset: it exits at once naming the
// variable (the mapreduce binary refuses the same), rather than serving an
// admin API that no one, or anyone, could use.
func TestRefusesEmptyAdminToken(t *testing.T) {
	bin := bintest.Build(t, "shortfleet/proxy")
	for _, tok := range []struct {
		name string
		env  []string
	}{{"empty", []string{"SHORTFLEET_ADMIN_TOKEN="}}, {"unset", nil}} {
		t.Run(tok.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-log-dir", t.TempDir())
			// Nothing listens at the replica's address: the refusal must
			// come before it is tried.
			cmd.Env = bintest.CleanEnv(append([]string{"SHORTFLEET_CODE_KEY=" + hex.EncodeToString([]byte("main-test-key-0123456")),
				"SHORTFLEET_REPLICA_DSN=postgres://shortfleet@127.0.0.1:1/shortfleet?connect_timeout=1"}, tok.env...)...)
			out := refusal(t, cmd)
			if !strings.Contains(out, "SHORTFLEET_ADMIN_TOKEN must be set") {
				t.Fatalf("exited without naming SHORTFLEET_ADMIN_TOKEN:\n%s", out)
			}
		})
	}
}

// refusal runs cmd, which should refuse to start, to its end and returns
// its output; it must exit 1 before it gets as far as the replica or a
// listener.
func refusal(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, code := bintest.RunToExit(t, cmd, "neither the replica", "listening on")
	if code != 1 {
		t.Fatalf("exit code %d, want 1:\n%s", code, out)
	}
	return out
}

// TestRefusesReadTokenEqualToAdminToken: a read token that is the admin
// token would hand whoever holds it (the primary app) the raw logs; the
// real binary refuses to start with the two equal.
func TestRefusesReadTokenEqualToAdminToken(t *testing.T) {
	bin := bintest.Build(t, "shortfleet/proxy")
	token := pgcluster.RandomSecret(16)
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-log-dir", t.TempDir())
	cmd.Env = bintest.CleanEnv("SHORTFLEET_CODE_KEY="+hex.EncodeToString([]byte("main-test-key-0123456")),
		"SHORTFLEET_ADMIN_TOKEN="+token, "SHORTFLEET_READ_TOKEN="+token,
		"SHORTFLEET_REPLICA_DSN=postgres://shortfleet@127.0.0.1:1/shortfleet?connect_timeout=1")
	out := refusal(t, cmd)
	if !strings.Contains(out, "SHORTFLEET_READ_TOKEN must differ from SHORTFLEET_ADMIN_TOKEN") {
		t.Fatalf("exited without naming the tokens:\n%s", out)
	}
}

// TestNoLog runs the real binary with -no-log: it redirects, writes
// nothing to its log folder, its metrics show the log closed with no
// record and no segment, its admin API lists no segment and refuses an
// acknowledgement ("logging is off"), and it stops cleanly.
func TestNoLog(t *testing.T) {
	bin := bintest.Build(t, "shortfleet/proxy")
	ctx := context.Background()
	// The primary stands in for the replica: the proxy reads the same
	// tables, and this test is about the log, not replication.
	db, pdb := pgcluster.StartTestDatabase(t)
	var id int64
	if err := pdb.QueryRow(ctx, `WITH u AS (INSERT INTO users (email, password_hash) VALUES ('t@example.com', 'x') RETURNING id)
		INSERT INTO links (user_id, target) SELECT id, 'https://example.com/landing' FROM u RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	key, token := []byte("main-test-key-0123456"), pgcluster.RandomSecret(16)
	codec, _ := codes.New(key)
	code, _ := codec.Encode(id)
	cmd := exec.Command(bin, "-id", "proxy-n", "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-log-dir", logDir, "-no-log")
	cmd.Env = append(os.Environ(), "SHORTFLEET_CODE_KEY="+hex.EncodeToString(key), "SHORTFLEET_ADMIN_TOKEN="+token,
		"SHORTFLEET_REPLICA_DSN="+db.DSN("shortfleet"))
	p := start(t, cmd)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(p.urls["redirect"] + "/" + code)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 {
		t.Fatalf("redirect: %d", resp.StatusCode)
	}
	// A 404 is no redirect: not timed as one.
	if resp, err = client.Get(p.urls["redirect"] + "/no-such-alias"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("no such alias: %d", resp.StatusCode)
	}
	metrics := scrapeMetrics(t, p.urls["admin"], token)
	for _, want := range []string{"shortfleet_proxy_log_open 0", `shortfleet_proxy_log_records_total{result="appended"} 0`,
		`shortfleet_proxy_log_records_total{result="dropped"} 0`, "shortfleet_proxy_segments_on_disk 0", "shortfleet_proxy_segments_pending 0",
		`shortfleet_proxy_requests_total{status="302"} 1`, `shortfleet_proxy_requests_total{status="404"} 1`,
		`shortfleet_proxy_redirect_duration_seconds_count 1`, `shortfleet_proxy_redirect_duration_seconds_bucket{le="+Inf"} 1`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	admin := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, p.urls["admin"]+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := admin("GET", "/segments", ""); st != 200 || strings.TrimSpace(body) != `{"proxy":"proxy-n","segments":[]}` {
		t.Errorf("GET /segments: %d %s", st, body)
	}
	if st, body := admin("POST", "/segments/ingested", `{"names":["x"]}`); st != 400 || strings.TrimSpace(body) != "logging is off" {
		t.Errorf("POST /segments/ingested: %d %q, want 400 logging is off", st, body)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("proxy exited with %v\n%s", err, p.out.String())
	}
	if !regexp.MustCompile(`msg=stopped .*logged=0 dropped=0`).MatchString(p.out.String()) {
		t.Errorf("the last line does not report nothing logged, nothing dropped:\n%s", p.out.String())
	}
	if entries, _ := os.ReadDir(logDir); len(entries) != 0 {
		t.Errorf("the log folder holds %d files with logging off", len(entries))
	}
	if t.Failed() {
		t.Logf("proxy output:\n%s", p.out.String())
	}
}
