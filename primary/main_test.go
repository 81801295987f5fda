package main

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/provisioning/tlscert"
)

func TestMain(m *testing.M) { bintest.Main(m) }

// splitDSN returns a test cluster's URL without its password, and the
// password.
func splitDSN(t *testing.T, c *pgcluster.Cluster) (string, string) {
	t.Helper()
	u, err := url.Parse(c.DSN("shortfleet"))
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	return u.String(), pw
}

var listenRE = regexp.MustCompile(`msg="listening on (https?://[^"\s]+)"`)

// serve starts the binary as a server and reports whether it got as far
// as listening (migrations applied: the database answered), with its
// output; a server that listens is then stopped with SIGTERM (how it
// stops is not this test's business).
func serve(t *testing.T, env []string, args ...string) (bool, string) {
	t.Helper()
	bin := bintest.Build(t, "shortfleet/primary")
	cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0", "-insecure-cookies"}, args...)...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	listening := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if listenRE.MatchString(sc.Text()) {
			listening = true
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	cmd.Wait()
	return listening, out.String()
}

// TestDSNPasswordNotOnCommandLine starts the real binary: a -dsn holding a
// password is refused before anything else, with a message saying where
// the password goes; the password in SHORTFLEET_DB_PASSWORD, in a
// -db-password-file or in SHORTFLEET_DSN works, and without it the
// database refuses (so the password given is the one that let it in).
func TestDSNPasswordNotOnCommandLine(t *testing.T) {
	c, _ := pgcluster.StartTestDatabase(t)
	withPW := c.DSN("shortfleet")
	noPW, pw := splitDSN(t, c)
	pwFile := filepath.Join(t.TempDir(), "db-password")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := "SHORTFLEET_CODE_KEY=00112233445566778899aabbccddeeff"

	ok, out := serve(t, bintest.CleanEnv(key), "-dsn", withPW)
	if ok || !strings.Contains(out, "-dsn holds a password") || !strings.Contains(out, "SHORTFLEET_DB_PASSWORD") {
		t.Fatalf("-dsn with a password: listening %v, want refused with a clear message:\n%s", ok, out)
	}
	if strings.Contains(out, pw) {
		t.Fatalf("the refusal shows the password:\n%s", out)
	}
	if ok, out := serve(t, bintest.CleanEnv(key), "-dsn", noPW); ok || !strings.Contains(out, "password authentication failed") {
		t.Fatalf("-dsn without any password: listening %v, want the database to refuse:\n%s", ok, out)
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"SHORTFLEET_DB_PASSWORD", []string{key, "SHORTFLEET_DB_PASSWORD=" + pw}, []string{"-dsn", noPW}},
		{"-db-password-file", []string{key}, []string{"-dsn", noPW, "-db-password-file", pwFile}},
		{"SHORTFLEET_DSN with the password", []string{key, "SHORTFLEET_DSN=" + withPW}, nil},
		{"SHORTFLEET_DSN and SHORTFLEET_DB_PASSWORD", []string{key, "SHORTFLEET_DSN=" + noPW, "SHORTFLEET_DB_PASSWORD=" + pw}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if ok, out := serve(t, bintest.CleanEnv(c.env...), c.args...); !ok {
				t.Fatalf("did not start:\n%s", out)
			}
		})
	}

	help, _ := exec.Command(bintest.Build(t, "shortfleet/primary"), "-h").CombinedOutput()
	if !regexp.MustCompile(`-dsn string\s+postgres:// URL of the primary database, without its password`).Match(help) ||
		!strings.Contains(string(help), "-db-password-file") {
		t.Fatalf("-h does not say where the password goes:\n%s", help)
	}
}

// TestGrantAdminNeedsOnlyTheDatabase runs grant-admin with nothing set but
// SHORTFLEET_DSN: no code key, no CSRF key, no other setting.
func TestGrantAdminNeedsOnlyTheDatabase(t *testing.T) {
	c, db := pgcluster.StartTestDatabase(t)
	if _, err := db.Exec(t.Context(), `INSERT INTO users (email, password_hash) VALUES ('boss@example.com', 'x')`); err != nil {
		t.Fatal(err)
	}
	grant := func(email string) (int, string) {
		cmd := exec.Command(bintest.Build(t, "shortfleet/primary"), "grant-admin", email)
		cmd.Env = []string{"SHORTFLEET_DSN=" + c.DSN("shortfleet")}
		out, code := bintest.RunToExit(t, cmd)
		return code, out
	}
	if code, out := grant("Boss@Example.com"); code != 0 || !strings.Contains(out, "admin granted") {
		t.Fatalf("grant-admin: exit %d\n%s", code, out)
	}
	var admin bool
	if err := db.QueryRow(t.Context(), `SELECT is_admin FROM users WHERE email = 'boss@example.com'`).Scan(&admin); err != nil || !admin {
		t.Fatalf("is_admin %v, %v after grant-admin", admin, err)
	}
	if code, out := grant("nobody@example.com"); code != 1 || !strings.Contains(out, "sign up first") {
		t.Fatalf("grant-admin of no account: exit %d, want 1 and a message\n%s", code, out)
	}
}

// start starts the binary as a server with args and returns the URL it
// reports listening on, and its output so far; it is stopped with SIGTERM
// when the test ends.
func start(t *testing.T, env []string, args ...string) (string, func() string) {
	t.Helper()
	cmd := exec.Command(bintest.Build(t, "shortfleet/primary"), append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out strings.Builder
	output := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	listening := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case listening <- m[1]: // the first listener reported: -listen's
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); <-done; cmd.Wait() })
	select {
	case u := <-listening:
		return u, output
	case <-done:
		t.Fatalf("did not start:\n%s", output())
		return "", nil
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to PEM files,
// issued by a CA of its own, and returns their names and a client that
// trusts it, dialing from 127.0.0.1 and following no redirect.
func selfSigned(t *testing.T) (certFile, keyFile string, c *http.Client) {
	t.Helper()
	ca, err := tlscert.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := ca.IssuePair(certFile, keyFile, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, from("127.0.0.1", &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true})
}

// from is a client whose connections come from ip (a loopback address)
// and that follows no redirect.
func from(ip string, tr *http.Transport) *http.Client {
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestHTTPS starts the real binary three ways. Behind a balancer (the
// default): plain HTTP is redirected to HTTPS (301 GET, 308 POST) but for
// GET /healthz, a stranger's X-Forwarded-Proto: https is not believed, and
// the balancer's is, with HSTS. With -insecure-cookies: a warning, no
// redirect, no HSTS. With a certificate and key of its own (flags or
// environment): it says https:// and serves HTTPS, HTTP/2, with HSTS.
// Half a pair, or a pair that does not load, stops it before it touches
// the database.
func TestHTTPS(t *testing.T) {
	c, _ := pgcluster.StartTestDatabase(t)
	env := bintest.CleanEnv("SHORTFLEET_CODE_KEY=00112233445566778899aabbccddeeff", "SHORTFLEET_DSN="+c.DSN("shortfleet"))
	certFile, keyFile, tlsClient := selfSigned(t)
	get := func(c *http.Client, method, url string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	const warning = "-insecure-cookies is a development switch only"

	t.Run("behind a balancer", func(t *testing.T) {
		base, out := start(t, env, "-trusted-proxies", "127.0.0.2")
		stranger, lb := from("127.0.0.1", &http.Transport{}), from("127.0.0.2", &http.Transport{})
		https := "https://" + strings.TrimPrefix(base, "http://")
		for _, c := range []struct {
			name         string
			c            *http.Client
			method, path string
			header       []string
			status       int
			location     string
		}{
			{"GET", stranger, "GET", "/links?sort=clicks", nil, 301, https + "/links?sort=clicks"},
			{"HEAD", stranger, "HEAD", "/login", nil, 301, https + "/login"},
			{"POST", stranger, "POST", "/api/signup", nil, 308, https + "/api/signup"},
			{"a stranger's X-Forwarded-Proto", stranger, "GET", "/", []string{"X-Forwarded-Proto", "https"}, 301, https + "/"},
			{"GET /healthz", stranger, "GET", "/healthz", nil, 200, ""},
			{"the balancer's X-Forwarded-Proto: https", lb, "GET", "/login", []string{"X-Forwarded-Proto", "https"}, 200, ""},
			{"the balancer's X-Forwarded-Proto: http", lb, "POST", "/api/signup", []string{"X-Forwarded-Proto", "http"}, 308, https + "/api/signup"},
		} {
			resp := get(c.c, c.method, base+c.path, c.header...)
			hsts := resp.Header.Get("Strict-Transport-Security")
			secure := c.c == lb && c.status == 200
			if resp.StatusCode != c.status || resp.Header.Get("Location") != c.location || (hsts == "max-age=63072000") != secure {
				t.Errorf("%s: %d Location %q Strict-Transport-Security %q; want %d %q, HSTS %v",
					c.name, resp.StatusCode, resp.Header.Get("Location"), hsts, c.status, c.location, secure)
			}
		}
		if strings.Contains(out(), warning) {
			t.Errorf("warned of -insecure-cookies without it:\n%s", out())
		}
	})

	t.Run("-insecure-cookies", func(t *testing.T) {
		base, out := start(t, env, "-insecure-cookies", "-trusted-proxies", "127.0.0.2")
		for _, c := range []struct {
			ip     string
			header []string
		}{{"127.0.0.1", nil}, {"127.0.0.2", []string{"X-Forwarded-Proto", "https"}}} {
			resp := get(from(c.ip, &http.Transport{}), "GET", base+"/login", c.header...)
			if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "" {
				t.Errorf("from %s %q: %d, Strict-Transport-Security %q; want 200 without", c.ip, c.header, resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
			}
		}
		if !strings.Contains(out(), warning) {
			t.Errorf("no warning that -insecure-cookies is for development:\n%s", out())
		}
	})

	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"-tls-cert and -tls-key", env, []string{"-tls-cert", certFile, "-tls-key", keyFile}},
		{"SHORTFLEET_TLS_CERT and SHORTFLEET_TLS_KEY", append(slices.Clip(env), "SHORTFLEET_TLS_CERT="+certFile, "SHORTFLEET_TLS_KEY="+keyFile), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, _ := start(t, c.env, c.args...)
			if !strings.HasPrefix(base, "https://") {
				t.Fatalf("listening on %s, want https://", base)
			}
			for _, m := range []string{"GET", "POST"} {
				resp := get(tlsClient, m, base+"/login")
				if resp.StatusCode == 301 || resp.StatusCode == 308 || resp.Header.Get("Strict-Transport-Security") != "max-age=63072000" || resp.ProtoMajor != 2 {
					t.Errorf("%s over TLS: %s %d, Strict-Transport-Security %q", m, resp.Proto, resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
				}
			}
		})
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"a certificate without its key", []string{"-tls-cert", certFile}, "give both files or neither"},
		{"a key without its certificate", []string{"-tls-key", keyFile}, "give both files or neither"},
		{"a pair that does not load", []string{"-tls-cert", keyFile, "-tls-key", certFile}, "load TLS certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bintest.Build(t, "shortfleet/primary"), append([]string{"-listen", "127.0.0.1:0"}, c.args...)...)
			cmd.Env = env
			out, code := bintest.RunToExit(t, cmd, "migrations applied", "listening on")
			if code != 1 || !strings.Contains(out, "-tls-cert, -tls-key: ") || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want 1 and a message naming the flags and saying %q:\n%s", code, c.want, out)
			}
		})
	}

	help, _ := exec.Command(bintest.Build(t, "shortfleet/primary"), "-h").CombinedOutput()
	if !regexp.MustCompile(`-insecure-cookies\s+.*development only; never behind a real balancer`).Match(help) {
		t.Fatalf("-h does not say -insecure-cookies is for development only:\n%s", help)
	}
}
