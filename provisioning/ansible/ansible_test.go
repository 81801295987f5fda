package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"shortfleet/provisioning/patroni"
	"shortfleet/provisioning/settings"
	"shortfleet/provisioning/tlscert"
)

// need fails the test when a tool is missing: make test installs them
// (provisioning/deps.sh), so a missing one is a broken machine, not a skip.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run provisioning/deps.sh as root (make deps)", tool)
		}
	}
}

// here is this folder, where the playbooks and ansible.cfg are.
func here(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// ansibleCmd runs an Ansible tool from this folder with this folder's
// ansible.cfg and its state (~/.ansible, caches) in a temporary folder.
func ansibleCmd(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(name, args...)
	cmd.Dir = here(t)
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+filepath.Join(cmd.Dir, "ansible.cfg"),
		"ANSIBLE_HOME="+home,
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"),
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"ANSIBLE_NOCOLOR=1", "NO_COLOR=1", "PY_COLORS=0",
	)
	return cmd
}

// playbooks returns the playbooks: every .yml file of this folder.
func playbooks(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no playbooks here (%v)", err)
	}
	return files
}

func TestSyntaxCheck(t *testing.T) {
	t.Parallel()
	need(t, "ansible-playbook")
	books := playbooks(t)
	for _, want := range []string{"site.yml", "add_proxy.yml", "remove_proxy.yml", "rebuild_replica.yml", "promote_replica.yml"} {
		if !slices.Contains(books, want) {
			t.Errorf("playbook %s is missing", want)
		}
	}
	args := append([]string{"--syntax-check", "-i", "inventory/example/hosts.yml"}, books...)
	if out, err := ansibleCmd(t, "ansible-playbook", args...).CombinedOutput(); err != nil {
		t.Fatalf("ansible-playbook --syntax-check: %v\n%s", err, out)
	}
}

func TestAnsibleLint(t *testing.T) {
	t.Parallel()
	need(t, "ansible-lint", "ansible-playbook")
	// -vv names each file's kind: every playbook must be linted as one
	// (.ansible-lint's kinds), not as plain YAML.
	cmd := ansibleCmd(t, "ansible-lint", "-p", "-vv")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ansible-lint: %v\n%s\n%s", err, stdout.String(), lastLines(stderr.String(), 20))
	}
	for _, book := range playbooks(t) {
		if !strings.Contains(stderr.String(), "Examining "+book+" of type playbook") {
			t.Errorf("ansible-lint did not lint %s as a playbook", book)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// A render is one template rendered by Ansible (see rendered) as a host of
// the example inventory (or localhost), with the play's vars_files and the
// task's vars.
type render struct {
	host      string
	varsFiles []string
	src       string
	vars      map[string]any
}

// The proxies of the explicit HAProxy cases, addressed as in the local fleet.
var localServers = []settings.Server{
	{Name: "proxy-01", Addr: "127.0.0.11", Port: 8080, CheckPort: 9090},
	{Name: "proxy-02", Addr: "127.0.0.12", Port: 8080, CheckPort: 9090},
	{Name: "proxy-03", Addr: "127.0.0.13", Port: 8080, CheckPort: 9090},
}

// certFile is the balancers' certificate of the HAProxy cases, under the
// render folder: Ansible renders its path there, TestHAProxyMatchesAnsible
// issues it there (haproxy -c loads it) and gives Go the same path.
const certFile = "haproxy/balancer.pem"

// The primary app behind the balancers of the explicit HAProxy cases; its
// host in mixed case, which both renderings lower.
var (
	localAppHost = "App.Example.com"
	localApps    = []settings.Server{{Name: "db-primary", Addr: "127.0.0.2", Port: 8000}, {Name: "proxy-01", Addr: "127.0.0.11", Port: 8000}}
)

var localBalancer = settings.Balancer{
	Binds: []string{"127.0.0.1:18080"}, TLSBinds: []string{"127.0.0.1:18443"}, AppHost: localAppHost, Apps: localApps,
	StatsBind: "127.0.0.1:18404", Log: "stdout format raw local0", Servers: localServers,
}

// sourcedBalancer connects to the proxies and the app from its own address.
var sourcedBalancer = settings.Balancer{
	Binds: []string{"127.0.0.4:18080"}, TLSBinds: []string{"127.0.0.4:18443"}, AppHost: localAppHost, Apps: localApps,
	StatsBind: "127.0.0.4:18404", Log: "stdout format raw local0", Source: "127.0.0.4", Servers: localServers,
}

// plainBalancer has neither HTTPS nor the app: short links over plain HTTP
// only, on two binds.
var plainBalancer = settings.Balancer{
	Binds: []string{"127.0.0.1:18080", "127.0.0.1:18081"}, StatsBind: "127.0.0.1:18404", Log: "stdout format raw local0", Servers: localServers,
}

// balancerVars is b as the haproxy role's variables; its certificate is
// certFile under the render folder.
func balancerVars(b settings.Balancer) map[string]any {
	apps := []map[string]any{}
	for _, s := range b.Apps {
		apps = append(apps, map[string]any{"name": s.Name, "addr": s.Addr, "port": s.Port})
	}
	servers := []map[string]any{}
	for _, s := range b.Servers {
		servers = append(servers, map[string]any{"name": s.Name, "addr": s.Addr, "port": s.Port, "check_port": s.CheckPort})
	}
	return map[string]any{
		// Empty lists, not null, as an inventory gives them.
		"haproxy_binds": append([]string{}, b.Binds...), "haproxy_tls_binds": append([]string{}, b.TLSBinds...),
		"haproxy_cert_file": "{{ render_dir }}/" + certFile,
		"haproxy_app_host":  b.AppHost, "haproxy_apps": apps,
		"haproxy_stats_bind": b.StatsBind, "haproxy_log": b.Log, "haproxy_source": b.Source, "haproxy_servers": servers,
	}
}

// hostSettings are proxy-01's postgres_extra_settings in the Patroni
// case: one over a shared setting, one quoted as postgresql.conf wants.
var hostSettings = map[string]string{
	"shared_buffers":  "1GB",
	"log_line_prefix": "'%m [%p] it''s '",
}

// amWebhooks are the receivers of the Alertmanager webhook case.
var amWebhooks = []string{"https://hooks.example.com/shortfleet", "http://192.0.2.40:8080/alerts?team=ops"}

// Files the rendered Prometheus configuration points at, under the render folder.
const (
	promRules = "prometheus/shortfleet.rules.yml"
	promToken = "prometheus/token"
	promRead  = "prometheus/read-token"
)

// renders is every rendering the tests compare, by output name.
func renders() map[string]render {
	const (
		haproxyJSON  = "../settings/haproxy.json"
		postgresJSON = "../settings/postgres.json"
		patroniJSON  = "../settings/patroni.json"
		haproxyTmpl  = "roles/haproxy/templates/haproxy.cfg.j2"
		patroniTmpl  = "roles/patroni/templates/config.yml.j2"
		envTmpl      = "roles/common/templates/app.env.j2"
		unitTmpl     = "roles/common/templates/app.service.j2"
	)
	h := settings.LoadHAProxy()
	r := map[string]render{
		// haproxy_settings from the file, as the playbooks load it.
		"haproxy-file.cfg": {host: "localhost", varsFiles: []string{haproxyJSON}, src: haproxyTmpl, vars: balancerVars(localBalancer)},
		// The example inventory's first load balancer, with the role's own
		// haproxy_servers, binds, app and log; only its certificate is the
		// test's, for haproxy -c.
		"haproxy-lb-01.cfg": {host: "lb-01", varsFiles: []string{haproxyJSON, "roles/haproxy/defaults/main.yml"}, src: haproxyTmpl,
			vars: map[string]any{"haproxy_cert_file": "{{ render_dir }}/" + certFile}},
		// Patroni's member configuration: the example inventory's
		// default (synchronous) with settings sized to the host; the
		// opt-out, on proxy-16, which the inventory tags nofailover.
		"patroni-proxy-01.yml": {host: "proxy-01", varsFiles: []string{postgresJSON, patroniJSON, "roles/postgres_common/defaults/main.yml", "roles/patroni/defaults/main.yml"},
			src: patroniTmpl, vars: map[string]any{"postgres_extra_settings": hostSettings}},
		"patroni-proxy-16-async.yml": {host: "proxy-16", varsFiles: []string{postgresJSON, patroniJSON, "roles/postgres_common/defaults/main.yml", "roles/patroni/defaults/main.yml"},
			src: patroniTmpl, vars: map[string]any{"shortfleet_synchronous_commit": false}},
		// The role's defaults: alerts go to the Alertmanager beside it.
		"prometheus.yml": {host: "mapreduce-01", varsFiles: []string{"../settings/patroni.json", "roles/monitoring/defaults/main.yml"}, src: "roles/monitoring/templates/prometheus.yml.j2",
			vars: map[string]any{"shortfleet_postgres_exporter": true, "monitoring_rules_file": "{{ render_dir }}/" + promRules,
				"monitoring_token_file": "{{ render_dir }}/" + promToken, "monitoring_read_token_file": "{{ render_dir }}/" + promRead}},
		// An Alertmanager of the site's own, none of the role's.
		"prometheus-own-am.yml": {host: "mapreduce-01", varsFiles: []string{"../settings/patroni.json", "roles/monitoring/defaults/main.yml"}, src: "roles/monitoring/templates/prometheus.yml.j2",
			vars: map[string]any{"monitoring_rules_file": "{{ render_dir }}/" + promRules, "monitoring_token_file": "{{ render_dir }}/" + promToken,
				"monitoring_read_token_file": "{{ render_dir }}/" + promRead,
				"monitoring_alertmanager":    false, "monitoring_alertmanagers": []string{"192.0.2.30:9093", "192.0.2.31:9093"}}},
	}
	// Alertmanager: no receiver (the defaults), webhooks, e-mail with a
	// login.
	for name, v := range map[string]map[string]any{
		"alertmanager-none.yml":    {},
		"alertmanager-webhook.yml": {"monitoring_alert_webhooks": amWebhooks},
		"alertmanager-email.yml": {"monitoring_alert_email_to": "oncall@example.com", "monitoring_alert_smtp_smarthost": "smtp.example.com:587",
			"monitoring_alert_smtp_username": "alerts", "monitoring_alert_smtp_password": "secret"},
	} {
		r[name] = render{host: "mapreduce-01", varsFiles: []string{"roles/monitoring/defaults/main.yml"}, src: "roles/monitoring/templates/alertmanager.yml.j2", vars: v}
	}
	// Every balance the Go side accepts, haproxy_settings as Go has them.
	for _, balance := range []string{"roundrobin", "leastconn", "uri-consistent"} {
		hb := h
		hb.Balance = balance
		v := balancerVars(localBalancer)
		v["haproxy_settings"] = hb
		r["haproxy-"+balance+".cfg"] = render{host: "localhost", src: haproxyTmpl, vars: v}
	}
	// Connections from a set source address, as the local fleet's.
	r["haproxy-source.cfg"] = render{host: "localhost", varsFiles: []string{haproxyJSON}, src: haproxyTmpl, vars: balancerVars(sourcedBalancer)}
	r["haproxy-plain.cfg"] = render{host: "localhost", varsFiles: []string{haproxyJSON}, src: haproxyTmpl, vars: balancerVars(plainBalancer)}
	// Each app's environment file and unit, with the vars its role's
	// tasks/main.yml passes to common's tasks/app.yml.
	for _, app := range []struct{ host, role, name, env string }{
		{"db-primary", "primary_app", "primary", "primary_app_env"},
		{"proxy-01", "proxy", "proxy", "proxy_env"},
		{"mapreduce-01", "mapreduce", "mapreduce", "mapreduce_env"},
	} {
		files := []string{"roles/common/defaults/main.yml", "roles/" + app.role + "/defaults/main.yml"}
		if app.role != "primary_app" {
			// site.yml loads the country database's settings for both.
			files = append([]string{"../settings/geoip.json"}, files...)
		}
		v := map[string]any{"common_app": app.name, "common_app_env": "{{ " + app.env + " }}", "common_app_description": "shortfleet " + app.name}
		switch app.name {
		case "proxy":
			v["common_app_args"] = "{{ proxy_args }}"
			v["common_app_writable"] = []string{"{{ proxy_segments_dir }}"}
		case "mapreduce":
			v["common_app_writable"] = []string{"{{ mapreduce_archive_dir }}"}
		}
		r[app.name+".env"] = render{host: app.host, varsFiles: files, src: envTmpl, vars: v}
		r["shortfleet-"+app.name+".service"] = render{host: app.host, varsFiles: files, src: unitTmpl, vars: v}
	}
	return r
}

var (
	renderOnce sync.Once
	renderDir  string
	renderErr  error
)

// moduleCheck is rendered twice, by the template lookup like every output
// and by the template module the roles use: the two must agree.
const moduleCheck = "haproxy-lb-01.cfg"

// rendered renders every template of renders() in one ansible-playbook run
// (a play per output) and returns the folder of the results. The template
// lookup renders on the control node as the template module does (the
// same Jinja settings: trim_blocks, trailing newline kept) without running
// a module per file, which costs seconds each on a loaded machine;
// moduleCheck holds the two together.
func rendered(t *testing.T) string {
	t.Helper()
	need(t, "ansible-playbook")
	renderOnce.Do(func() { renderDir, renderErr = renderAll(t) })
	if renderErr != nil {
		t.Fatal(renderErr)
	}
	return renderDir
}

func renderAll(t *testing.T) (string, error) {
	dir, err := os.MkdirTemp("", "shortfleet-ansible-")
	if err != nil {
		return "", err
	}
	abs := func(p string) string { return filepath.Join(here(t), p) }
	var plays []map[string]any
	all := renders()
	for _, name := range slices.Sorted(maps.Keys(all)) {
		r := all[name]
		var files []string
		for _, f := range r.varsFiles {
			files = append(files, abs(f))
		}
		// Task vars win over vars_files (the role defaults).
		vars := map[string]any{"render_dir": dir}
		maps.Copy(vars, r.vars)
		tasks := []map[string]any{{
			"name":                  name,
			"ansible.builtin.debug": map[string]any{"msg": "{{ lookup('ansible.builtin.template', '" + abs(r.src) + "', convert_data=False) }}"},
			"vars":                  vars,
		}}
		if name == moduleCheck {
			tasks = append(tasks, map[string]any{
				"name":                     "module",
				"ansible.builtin.template": map[string]any{"src": abs(r.src), "dest": filepath.Join(dir, name+".module"), "mode": "0644"},
				"vars":                     vars,
			})
		}
		plays = append(plays, map[string]any{
			"name": name, "hosts": r.host, "connection": "local", "gather_facts": false,
			"vars_files": files, "tasks": tasks,
		})
	}
	book, err := json.MarshalIndent(plays, "", "  ")
	if err != nil {
		return dir, err
	}
	path := filepath.Join(dir, "render.yml")
	if err := os.WriteFile(path, book, 0o644); err != nil {
		return dir, err
	}
	cmd := ansibleCmd(t, "ansible-playbook", "-i", "inventory/example/hosts.yml", "-e", "ansible_python_interpreter=/usr/bin/python3", path)
	cmd.Env = append(cmd.Env, "ANSIBLE_STDOUT_CALLBACK=json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return dir, fmt.Errorf("ansible-playbook %s: %v\n%s\n%s", path, err, stdout.String(), stderr.String())
	}
	// The json callback: every play's tasks, with each host's result.
	var run struct {
		Plays []struct {
			Play struct {
				Name string `json:"name"`
			} `json:"play"`
			Tasks []struct {
				Task struct {
					Name string `json:"name"`
				} `json:"task"`
				Hosts map[string]struct {
					Msg any `json:"msg"`
				} `json:"hosts"`
			} `json:"tasks"`
		} `json:"plays"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &run); err != nil {
		return dir, fmt.Errorf("ansible-playbook %s: json output: %v\n%s", path, err, stdout.String())
	}
	for _, p := range run.Plays {
		for _, task := range p.Tasks {
			if task.Task.Name != p.Play.Name {
				continue
			}
			for host, res := range task.Hosts {
				text, ok := res.Msg.(string)
				if !ok {
					return dir, fmt.Errorf("%s on %s: Ansible returned %T, not text", p.Play.Name, host, res.Msg)
				}
				if err := os.WriteFile(filepath.Join(dir, p.Play.Name), []byte(text), 0o644); err != nil {
					return dir, err
				}
			}
		}
	}
	for name := range all {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return dir, fmt.Errorf("ansible-playbook rendered no %s:\n%s", name, stdout.String())
		}
	}
	return dir, nil
}

func TestTemplateLookupIsTheModule(t *testing.T) {
	t.Parallel()
	dir := rendered(t)
	sameText(t, moduleCheck, readFile(t, filepath.Join(dir, moduleCheck)), readFile(t, filepath.Join(dir, moduleCheck+".module")))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if renderDir != "" {
		os.RemoveAll(renderDir)
	}
	os.Exit(code)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameText fails with the first differing line when got != want.
func sameText(t *testing.T, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			t.Fatalf("%s: line %d: Ansible renders %q, Go renders %q\n--- Ansible:\n%s\n--- Go:\n%s", what, i+1, gl, wl, got, want)
		}
	}
}

// inventoryServers is the example inventory's proxies as settings.Server:
// proxy-01 to proxy-16 at 198.51.100.11 to .26, on the local fleet's ports.
func inventoryServers() []settings.Server {
	var s []settings.Server
	for i := 1; i <= 16; i++ {
		s = append(s, settings.Server{Name: fmt.Sprintf("proxy-%02d", i), Addr: fmt.Sprintf("198.51.100.%d", 10+i), Port: 8080, CheckPort: 9090})
	}
	return s
}

func TestHAProxyMatchesAnsible(t *testing.T) {
	t.Parallel()
	need(t, "haproxy")
	dir := rendered(t)
	// The certificate the HTTPS binds name, which haproxy -c loads.
	cert := filepath.Join(dir, certFile)
	if err := os.MkdirAll(filepath.Dir(cert), 0o700); err != nil {
		t.Fatal(err)
	}
	ca, err := tlscert.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Issue(cert, []string{"s.example.com", "app.example.com"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	withCert := func(b settings.Balancer) settings.Balancer {
		b.CertFile = cert
		return b
	}
	file := settings.LoadHAProxy()
	cases := []struct {
		out     string
		balance string
		b       settings.Balancer
	}{
		{"haproxy-file.cfg", file.Balance, withCert(localBalancer)},
		{"haproxy-roundrobin.cfg", "roundrobin", withCert(localBalancer)},
		{"haproxy-leastconn.cfg", "leastconn", withCert(localBalancer)},
		{"haproxy-uri-consistent.cfg", "uri-consistent", withCert(localBalancer)},
		{"haproxy-source.cfg", file.Balance, withCert(sourcedBalancer)},
		{"haproxy-plain.cfg", file.Balance, plainBalancer},
		// The role's defaults over the example inventory: HTTP and HTTPS
		// on the balancer's address, requests for app.example.com (from
		// shortfleet_app_base) to the primary host's app.
		{"haproxy-lb-01.cfg", file.Balance, withCert(settings.Balancer{
			Binds: []string{"192.0.2.5:80"}, TLSBinds: []string{"192.0.2.5:443"},
			AppHost: "app.example.com", Apps: []settings.Server{{Name: "db-primary", Addr: "192.0.2.10", Port: 8000}, {Name: "proxy-01", Addr: "198.51.100.11", Port: 8000}},
			StatsBind: "192.0.2.5:8404", Log: "/dev/log local0", Servers: inventoryServers(),
		})},
	}
	for _, c := range cases {
		t.Run(c.out, func(t *testing.T) {
			h := file
			h.Balance = c.balance
			want, err := h.RenderHAProxy(c.b)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, c.out)
			sameText(t, c.out, readFile(t, path), want)
			if out, err := exec.Command("haproxy", "-c", "-f", path).CombinedOutput(); err != nil {
				t.Fatalf("haproxy -c -f %s: %v\n%s", c.out, err, out)
			}
		})
	}
}

// TestPatroniConfigMatchesAnsible compares the patroni role's member
// configuration, rendered by Ansible for hosts of the example inventory,
// with the local fleet's (patroni.Member.Config) for the same member: the
// same structure from the same settings files. Two keys are the role's
// own: pg_hba (every Postgres host replicates and rewinds as the
// superuser, the apps' hosts connect to shortfleet; the local fleet admits
// its loopback network) and use_unix_socket (Patroni's own connections
// over the socket, by peer).
func TestPatroniConfigMatchesAnsible(t *testing.T) {
	t.Parallel()
	dir := rendered(t)
	etcd := []string{"192.0.2.5:2379", "192.0.2.6:2379", "192.0.2.20:2379"}
	proxies := func(from int) []string {
		var a []string
		for i := from; i <= 16; i++ {
			a = append(a, fmt.Sprintf("198.51.100.%d", 10+i))
		}
		return a
	}
	var hba []any
	for _, l := range []string{"local all all peer", "host all all 127.0.0.1/32 scram-sha-256", "host all all ::1/128 scram-sha-256"} {
		hba = append(hba, l)
	}
	for _, a := range append([]string{"192.0.2.10"}, proxies(1)...) {
		hba = append(hba, "host replication postgres "+a+"/32 scram-sha-256", "host all postgres "+a+"/32 scram-sha-256")
	}
	// The apps (db-primary, proxy-01), mapreduce, then every proxy.
	for _, a := range append([]string{"192.0.2.10", "198.51.100.11", "192.0.2.20"}, proxies(2)...) {
		hba = append(hba, "host shortfleet shortfleet "+a+"/32 scram-sha-256")
	}
	member := func(name, addr string, params map[string]string, noFailover bool) patroni.Member {
		return patroni.Member{
			Name: name, Host: addr, PGPort: 5432,
			DataDir: "/var/lib/postgresql/15/shortfleet", BinDir: "/usr/lib/postgresql/15/bin", SockDir: "/var/run/postgresql",
			Etcd: etcd, Password: "example-superuser-password", APIPassword: "example-patroni-api-password",
			Parameters: params, NoFailover: noFailover, NoSync: noFailover,
		}
	}
	cases := []struct {
		out  string
		m    patroni.Member
		sync bool
	}{
		{"patroni-proxy-01.yml", member("proxy-01", "198.51.100.11", hostSettings, false), true},
		{"patroni-proxy-16-async.yml", member("proxy-16", "198.51.100.26", nil, true), false},
	}
	for _, c := range cases {
		t.Run(c.out, func(t *testing.T) {
			var got any
			if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, c.out))), &got); err != nil {
				t.Fatalf("%s is not JSON (YAML's subset the role writes): %v", c.out, err)
			}
			// Through JSON, as Patroni reads either: numbers and maps alike.
			var want map[string]any
			data, _ := json.Marshal(c.m.Config())
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			pg := want["postgresql"].(map[string]any)
			pg["pg_hba"] = hba
			pg["use_unix_socket"] = true
			want["bootstrap"].(map[string]any)["dcs"].(map[string]any)["synchronous_mode"] = c.sync
			if !reflect.DeepEqual(got, any(want)) {
				g, _ := json.MarshalIndent(got, "", "  ")
				w, _ := json.MarshalIndent(want, "", "  ")
				sameText(t, c.out, string(g), string(w))
				t.Fatalf("%s: Ansible's and Go's differ in types only:\n%s\n%s", c.out, g, w)
			}
		})
	}
}

// metricNames returns the metrics the proxy and the mapreduce daemon
// export, read from their sources.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, src := range []struct{ file, prefix, fn string }{
		{"../../proxy/internal/metrics/metrics.go", "shortfleet_proxy_", "desc"},
		{"../../mapreduce/internal/job/metrics.go", "shortfleet_mapreduce_", "mdesc"},
		{"../../primary/internal/metrics/metrics.go", "shortfleet_app_", "(?:desc|name)"},
	} {
		text := readFile(t, src.file)
		if !regexp.MustCompile(`"` + src.prefix + `" ?\+ ?(name|n)\b`).MatchString(text) {
			t.Fatalf("%s no longer names its metrics %q+name; update this test", src.file, src.prefix)
		}
		found := regexp.MustCompile(`\b`+src.fn+`\("([a-z0-9_]+)"`).FindAllStringSubmatch(text, -1)
		if len(found) == 0 {
			t.Fatalf("no %s(...) metric descriptions in %s", src.fn, src.file)
		}
		for _, m := range found {
			names[src.prefix+m[1]] = true
		}
		// Names written whole (a histogram's HistogramOpts).
		for _, m := range regexp.MustCompile(`"(`+src.prefix+`[a-z0-9_]+)"`).FindAllStringSubmatch(text, -1) {
			names[m[1]] = true
		}
	}
	// Histograms (by this code's convention, the *_duration_seconds) are
	// read as their series.
	for n := range names {
		if strings.HasSuffix(n, "_duration_seconds") {
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		}
	}
	return names
}

var shortfleetMetric = regexp.MustCompile(`\bshortfleet_(proxy|mapreduce|app)_[a-z0-9_]+`)

// checkMetrics fails for each shortfleet metric in text that no binary
// exports, and returns how many it found.
func checkMetrics(t *testing.T, what, text string, known map[string]bool) int {
	t.Helper()
	used := shortfleetMetric.FindAllString(text, -1)
	for _, m := range used {
		if !known[m] {
			t.Errorf("%s names %s, which no shortfleet binary exports", what, m)
		}
	}
	return len(used)
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("promtool", args...).CombinedOutput(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

const rulesFile = "roles/monitoring/files/shortfleet.rules.yml"

func TestPrometheus(t *testing.T) {
	t.Parallel()
	need(t, "promtool")
	known := metricNames(t)

	t.Run("rules", func(t *testing.T) {
		promtool(t, "check", "rules", rulesFile)
		// The alerts fire when they should (testdata/rules_test.yml).
		promtool(t, "test", "rules", "testdata/rules_test.yml")
		if checkMetrics(t, rulesFile, readFile(t, rulesFile), known) == 0 {
			t.Errorf("%s names no shortfleet metric", rulesFile)
		}
	})

	t.Run("config", func(t *testing.T) {
		dir := rendered(t)
		// The rendered configuration points at these; promtool reads them.
		if err := os.MkdirAll(filepath.Join(dir, "prometheus"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, promRules), []byte(readFile(t, rulesFile)), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{promToken, promRead} {
			if err := os.WriteFile(filepath.Join(dir, tok), []byte("token"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, "prometheus.yml")
		promtool(t, "check", "config", path)
		cfg := readFile(t, path)
		// Every process of the example inventory is scraped.
		for _, job := range []struct {
			name    string
			targets int
		}{{"shortfleet_proxy", 16}, {"shortfleet_app", 2}, {"shortfleet_mapreduce", 1}, {"haproxy", 2}, {"postgres", 17}, {"patroni", 17}} {
			i := strings.Index(cfg, "job_name: "+job.name+"\n")
			if i < 0 {
				t.Errorf("no scrape job %s", job.name)
				continue
			}
			section := cfg[i+1:]
			if j := strings.Index(section, "job_name:"); j >= 0 {
				section = section[:j]
			}
			if n := strings.Count(section, "- targets:"); n != job.targets {
				t.Errorf("job %s scrapes %d targets, want %d", job.name, n, job.targets)
			}
			// The mapreduce daemon's /metrics needs the admin token.
			if job.name == "shortfleet_mapreduce" && !strings.Contains(section, "credentials_file: "+filepath.Join(dir, promToken)) {
				t.Errorf("job shortfleet_mapreduce is scraped without the admin token:\n%s", section)
			}
			// The app, on the apps' hosts' admin port, with the read
			// token: it never holds the admin token.
			if job.name == "shortfleet_app" {
				for _, want := range []string{`"192.0.2.10:9091"`, `"198.51.100.11:9091"`, "host: db-primary", "host: proxy-01",
					"credentials_file: " + filepath.Join(dir, promRead)} {
					if !strings.Contains(section, want) {
						t.Errorf("job shortfleet_app lacks %s:\n%s", want, section)
					}
				}
			}
		}
		// Alerts go to the role's Alertmanager, beside Prometheus.
		if !strings.Contains(cfg, `targets: ["192.0.2.20:9093"]`) {
			t.Errorf("Prometheus does not send alerts to the Alertmanager on mapreduce-01:\n%s", cfg)
		}
		if strings.Count(cfg, "credentials_file: "+filepath.Join(dir, promToken)) != 2 {
			t.Errorf("the proxies and mapreduce are not both scraped with the admin token:\n%s", cfg)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		const file = "roles/monitoring/files/shortfleet-dashboard.json"
		var d struct {
			Title  string  `json:"title"`
			UID    string  `json:"uid"`
			Panels []panel `json:"panels"`
		}
		if err := json.Unmarshal([]byte(readFile(t, file)), &d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d.Title == "" || d.UID == "" {
			t.Errorf("the dashboard has no title or uid")
		}
		var exprs []string
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if p.Type != "row" && len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, q := range p.Targets {
					exprs = append(exprs, q.Expr)
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
		if checkMetrics(t, file, strings.Join(exprs, "\n"), known) == 0 {
			t.Fatalf("%s names no shortfleet metric", file)
		}
		// Every query parses: promtool checks them as recording rules.
		var rules strings.Builder
		rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		for i, e := range exprs {
			q, _ := json.Marshal(e)
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
		}
		path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
		if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		promtool(t, "check", "rules", path)
	})
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// envVars returns the SHORTFLEET_ variables a binary's main.go reads.
func envVars(t *testing.T, app string) []string {
	t.Helper()
	var vars []string
	for _, m := range regexp.MustCompile(`\("(SHORTFLEET_[A-Z0-9_]+)"`).FindAllStringSubmatch(readFile(t, "../../"+app+"/main.go"), -1) {
		if !slices.Contains(vars, m[1]) {
			vars = append(vars, m[1])
		}
	}
	if len(vars) == 0 {
		t.Fatalf("%s/main.go reads no SHORTFLEET_ variable", app)
	}
	return vars
}

func TestAppEnvironmentAndUnits(t *testing.T) {
	t.Parallel()
	dir := rendered(t)
	// Left out of the environment file when empty (the binary's default);
	// SHORTFLEET_DB_PASSWORD too, as the DSN in the file holds the password.
	optional := map[string]bool{"SHORTFLEET_BLOCKLIST": true, "SHORTFLEET_GEOIP": true, "SHORTFLEET_COUNTRY_DB": true, "SHORTFLEET_DB_PASSWORD": true, "SHORTFLEET_REDACT_HEADERS": true, "SHORTFLEET_TLS_CERT": true, "SHORTFLEET_TLS_KEY": true}
	line := regexp.MustCompile(`^(SHORTFLEET_[A-Z0-9_]+)="(.*)"$`)
	for _, app := range []string{"primary", "proxy", "mapreduce"} {
		t.Run(app, func(t *testing.T) {
			reads := envVars(t, app)
			set := map[string]string{}
			for _, l := range strings.Split(readFile(t, filepath.Join(dir, app+".env")), "\n") {
				if l == "" || strings.HasPrefix(l, "#") {
					continue
				}
				m := line.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("%s.env: line %q is not NAME=\"value\"", app, l)
				}
				set[m[1]] = m[2]
			}
			for _, v := range reads {
				if _, ok := set[v]; !ok && !optional[v] {
					t.Errorf("%s reads %s, which its environment file does not set", app, v)
				}
			}
			for v := range set {
				if !slices.Contains(reads, v) {
					t.Errorf("%s.env sets %s, which %s does not read", app, v, app)
				}
			}
			// The primary's fleet page reads the proxies with the read
			// token; the admin token (raw logs) stays off its host.
			if _, ok := set["SHORTFLEET_ADMIN_TOKEN"]; ok && app == "primary" {
				t.Errorf("primary.env holds the proxies' admin token")
			}
			if app == "primary" {
				// Links into the fleet are refused, and only the
				// balancers' X-Forwarded-For is believed.
				hosts := strings.Split(set["SHORTFLEET_FLEET_HOSTS"], ",")
				want := []string{"192.0.2.5", "192.0.2.6", "192.0.2.20", "app.example.com"}
				for i := 11; i <= 26; i++ {
					want = append(want, fmt.Sprintf("198.51.100.%d", i))
				}
				slices.Sort(hosts)
				slices.Sort(want)
				if !slices.Equal(hosts, want) {
					t.Errorf("primary.env: SHORTFLEET_FLEET_HOSTS %q, want every proxy, balancer, the mapreduce host and the app's name %q", hosts, want)
				}
				if got := set["SHORTFLEET_APP_BASE"]; got != "https://app.example.com" {
					t.Errorf("primary.env: SHORTFLEET_APP_BASE %q, want the inventory's https://app.example.com", got)
				}
				if got := set["SHORTFLEET_ADMIN_LISTEN"]; got != "192.0.2.10:9091" {
					t.Errorf("primary.env: SHORTFLEET_ADMIN_LISTEN %q, want the host's own address and port 9091, which Prometheus scrapes", got)
				}
				if got := set["SHORTFLEET_TRUSTED_PROXIES"]; got != "192.0.2.5,192.0.2.6" {
					t.Errorf("primary.env: SHORTFLEET_TRUSTED_PROXIES %q, want the balancers 192.0.2.5,192.0.2.6", got)
				}
			}
			for v, val := range set {
				if strings.HasSuffix(v, "_DSN") && strings.Contains(val, ",") && !strings.Contains(val, "target_session_attrs=read-write") {
					t.Errorf("%s: the multi-host %s does not ask for the writable host: %s", app, v, val)
				}
			}

			unit := readFile(t, filepath.Join(dir, "shortfleet-"+app+".service"))
			for _, want := range []string{
				"ExecStart=/usr/local/bin/shortfleet-" + app,
				"EnvironmentFile=/etc/shortfleet/" + app + ".env",
				"User=shortfleet", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
				"ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
			} {
				if !strings.Contains(unit, want) {
					t.Errorf("shortfleet-%s.service lacks %q:\n%s", app, want, unit)
				}
			}
			// ps shows a command line to every user: the database's address
			// and password stay in the environment file.
			for _, l := range strings.Split(unit, "\n") {
				if strings.HasPrefix(l, "ExecStart=") && (strings.Contains(l, "dsn") || strings.Contains(l, "postgres://") || strings.Contains(l, "password")) {
					t.Errorf("shortfleet-%s.service puts the database on the command line: %s", app, l)
				}
			}
			// The balancers send X-Forwarded-For and X-Client-Port over
			// connections they reuse, not the PROXY protocol; the app's
			// cookies stay Secure.
			for _, flag := range []string{"-proxy-protocol", "-insecure-cookies"} {
				if strings.Contains(unit, flag) {
					t.Errorf("shortfleet-%s.service passes %s:\n%s", app, flag, unit)
				}
			}
			if app != "primary" && !strings.Contains(unit, "ReadWritePaths=/var/lib/shortfleet/") {
				t.Errorf("shortfleet-%s.service cannot write its folder:\n%s", app, unit)
			}
		})
	}
}

// TestPrimaryRefusesInsecureCookies runs the primary_app role's checks
// with the flags an operator might add: -insecure-cookies, a development
// switch, stops the play in any spelling; other flags pass.
func TestPrimaryRefusesInsecureCookies(t *testing.T) {
	t.Parallel()
	need(t, "ansible-playbook")
	abs := func(p string) string { return filepath.Join(here(t), p) }
	book, err := json.Marshal([]map[string]any{{
		"name": "checks", "hosts": "db-primary", "connection": "local", "gather_facts": false,
		"vars_files": []string{abs("roles/primary_app/defaults/main.yml")},
		"tasks":      []map[string]any{{"name": "checks", "ansible.builtin.import_tasks": abs("roles/primary_app/tasks/checks.yml")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "checks.yml")
	if err := os.WriteFile(path, book, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args    []string
		refused bool
	}{
		{[]string{}, false},
		{[]string{"-rate-create", "100/1m", "-no-migrate"}, false},
		{[]string{"-insecure-cookies"}, true},
		{[]string{"-rate-create", "100/1m", "--insecure-cookies=true"}, true},
		{[]string{"-insecure-cookies=false"}, true},
	} {
		vars, _ := json.Marshal(map[string]any{"primary_app_args": c.args})
		cmd := ansibleCmd(t, "ansible-playbook", "-i", "inventory/example/hosts.yml", "-e", "ansible_python_interpreter=/usr/bin/python3", "-e", string(vars), path)
		out, err := cmd.CombinedOutput()
		if err != nil && cmd.ProcessState == nil {
			t.Fatal(err)
		}
		refused := err != nil && strings.Contains(string(out), "development switch only")
		if refused != c.refused || (err != nil && !refused) {
			t.Errorf("primary_app_args %q: refused %v (%v), want %v:\n%s", c.args, refused, err, c.refused, out)
		}
	}
}

// TestHAProxyRoleChecksCert runs the haproxy role's tls tasks (as
// `--tags tls` does on renewal) for lb-01 of the example inventory, in
// check mode on this machine, with the control node's `fleet check-cert`
// built from this tree: an expired certificate, or one that does not cover
// the app host, stops the play at the check with tlscert's reason, before
// the balancer's certificate folder is touched; a good one goes on to
// install it.
func TestHAProxyRoleChecksCert(t *testing.T) {
	t.Parallel()
	need(t, "ansible-playbook")
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir+"/", "shortfleet/provisioning/fleet").CombinedOutput(); err != nil {
		t.Fatalf("build fleet: %v\n%s", err, out)
	}
	ca, err := tlscert.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	// As an ACME client writes them: the chain, and the key apart.
	issue := func(name string, hosts []string, validity time.Duration) (chain, key string) {
		one := filepath.Join(dir, name+".pem")
		if err := ca.Issue(one, hosts, validity); err != nil {
			t.Fatal(err)
		}
		data := readFile(t, one)
		i := strings.Index(data, "-----BEGIN PRIVATE KEY")
		chain, key = filepath.Join(dir, name+"-fullchain.pem"), filepath.Join(dir, name+"-privkey.pem")
		if err := os.WriteFile(chain, []byte(data[:i]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, []byte(data[i:]), 0o600); err != nil {
			t.Fatal(err)
		}
		return chain, key
	}
	both := []string{"s.example.com", "app.example.com"}
	abs := func(p string) string { return filepath.Join(here(t), p) }
	book, err := json.Marshal([]map[string]any{{
		"name": "balancer", "hosts": "lb-01", "connection": "local", "gather_facts": false,
		"vars_files": []string{abs("../settings/haproxy.json")},
		"roles":      []string{abs("roles/haproxy")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "balancer.yml")
	if err := os.WriteFile(path, book, 0o644); err != nil {
		t.Fatal(err)
	}
	// The tasks after the check, by the end of their names: the role is
	// named by its path here.
	const (
		folder  = " : Create the certificate folder]"
		install = " : Install the certificate chain and its key as one file (HAProxy's crt)]"
	)
	for _, c := range []struct {
		name  string
		hosts []string
		valid time.Duration
		want  string // in the output; "" for success
	}{
		{"good", both, 24 * time.Hour, ""},
		{"expired", both, -time.Minute, "expired on"},
		{"without the app host", []string{"s.example.com"}, 24 * time.Hour, "does not cover app.example.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			chain, key := issue(strings.ReplaceAll(c.name, " ", "-"), c.hosts, c.valid)
			vars, _ := json.Marshal(map[string]any{
				"shortfleet_bin_dir": dir, "shortfleet_tls_cert": chain, "shortfleet_tls_key": key,
				"haproxy_cert_file":          filepath.Join(dir, "certs", "shortfleet.pem"),
				"ansible_python_interpreter": "/usr/bin/python3",
			})
			cmd := ansibleCmd(t, "ansible-playbook", "-i", "inventory/example/hosts.yml", "--check", "--tags", "tls", "-e", string(vars), path)
			out, err := cmd.CombinedOutput()
			if err != nil && cmd.ProcessState == nil {
				t.Fatal(err)
			}
			results := taskResults(string(out))
			if c.want != "" {
				if err == nil || !strings.Contains(string(out), c.want) {
					t.Fatalf("got %v, want the play to stop with %q:\n%s", err, c.want, out)
				}
				if _, ok := results[folder]; ok {
					t.Fatalf("the play went on to the balancer after a refused certificate:\n%s", out)
				}
				return
			}
			// This machine has no systemd: the reload handler, the last
			// thing the play does, cannot run here.
			if results[folder] != "changed" || results[install] != "changed" || (err != nil && results[" : Reload haproxy]"] != "fatal") {
				t.Fatalf("a good certificate: %v, tasks %v:\n%s", err, results, out)
			}
		})
	}
}

// taskResults maps the end of each task's (or handler's) name, from its
// last " : ", to the first word of its last result line (ok, changed,
// skipping, fatal) in ansible-playbook's output.
func taskResults(out string) map[string]string {
	res := map[string]string{}
	task := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "TASK [") || strings.HasPrefix(l, "RUNNING HANDLER [") {
			task = strings.TrimRight(l, " *")
			if i := strings.LastIndex(task, " : "); i >= 0 {
				task = task[i:]
			}
			continue
		}
		if word, _, ok := strings.Cut(l, ": ["); ok && task != "" && !strings.Contains(word, " ") {
			res[task] = word
		}
	}
	return res
}
