package localfleet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"shortfleet/provisioning/ansible/roles"
	"shortfleet/provisioning/monitoring"
	"shortfleet/provisioning/proc"
)

// Monitoring ports, on the mapreduce host (as the example inventory puts
// Prometheus beside the mapreduce daemon).
const (
	PortPrometheus   = 9090
	PortAlertmanager = 9093
)

// Host names the alerts carry (the host label) for the hosts that are not
// named after a proxy: the inventory's, and the primary host's Patroni
// member's.
const (
	hostMapreduce = "mapreduce-01"
	hostBalancer  = "lb-01"
)

// monitoringHost is where Prometheus and Alertmanager run.
func (f *Fleet) monitoringHost() string { return f.cfg.host(3) }

// PrometheusURL is Prometheus's page, "" unless Config.Monitoring.
func (f *Fleet) PrometheusURL() string {
	if f.prometheus == nil {
		return ""
	}
	return "http://" + net.JoinHostPort(f.monitoringHost(), strconv.Itoa(PortPrometheus))
}

// AlertmanagerURL is Alertmanager's page, "" unless Config.Monitoring.
func (f *Fleet) AlertmanagerURL() string {
	if f.alertmanager == nil {
		return ""
	}
	return "http://" + net.JoinHostPort(f.monitoringHost(), strconv.Itoa(PortAlertmanager))
}

// MonitoringFile is one of the files Prometheus and Alertmanager read, in
// the state folder's monitoring/: prometheus.yml, shortfleet.rules.yml,
// alertmanager.yml.
func (f *Fleet) MonitoringFile(name string) string { return f.path("monitoring", name) }

// monitoringConfig renders what the Ansible monitoring role would for
// this fleet (provisioning/monitoring), with its timings divided by
// Config.MonitoringSpeedup: Prometheus's configuration, the rules and
// Alertmanager's configuration.
func (f *Fleet) monitoringConfig() (prom string, rules []byte, am string, err error) {
	t := monitoring.Timings{Speedup: f.cfg.MonitoringSpeedup}
	if rules, err = t.Rules(roles.Rules); err != nil {
		return "", nil, "", err
	}
	p := monitoring.Prometheus{
		ScrapeInterval: t.Div(monitoring.ScrapeInterval),
		RulesFile:      f.MonitoringFile("shortfleet.rules.yml"),
		Listen:         net.JoinHostPort(f.monitoringHost(), strconv.Itoa(PortPrometheus)),
		Alertmanagers:  []string{net.JoinHostPort(f.monitoringHost(), strconv.Itoa(PortAlertmanager))},
		TokenFile:      f.MonitoringFile("admin-token"),
		ReadTokenFile:  f.MonitoringFile("read-token"),
	}
	jobs := map[string]*[]monitoring.Target{"shortfleet_proxy": &p.Proxies, "shortfleet_app": &p.Apps, "shortfleet_mapreduce": &p.Mapreduce}
	for _, st := range f.ScrapeTargets() {
		*jobs[st.Job] = append(*jobs[st.Job], monitoring.Target{Addr: st.Addr, Host: st.Host})
	}
	if f.balanced {
		p.HAProxy = []monitoring.Target{{Addr: net.JoinHostPort(f.balancerHost(), strconv.Itoa(PortBalancerStats)), Host: hostBalancer}}
	}
	// Each Postgres host is named after its Patroni member.
	for _, c := range f.DBs {
		p.Patroni = append(p.Patroni, monitoring.Target{Addr: c.RESTAddr(), Host: c.Name()})
	}
	if prom, err = p.Render(); err != nil {
		return "", nil, "", err
	}
	am, err = monitoring.Alertmanager{
		GroupWait: t.Div(monitoring.GroupWait), GroupInterval: t.Div(monitoring.GroupInterval), RepeatInterval: t.Div(monitoring.RepeatInterval),
		Webhooks: f.cfg.AlertWebhooks, Inhibit: roles.AlertmanagerInhibit,
	}.Render()
	return prom, rules, am, err
}

// startMonitoring writes the configuration, checks it with promtool and
// amtool as the role does, and starts Alertmanager and Prometheus
// supervised, each keeping its data in the state folder; it returns once
// both are ready.
func (f *Fleet) startMonitoring(ctx context.Context) error {
	for _, tool := range []string{"prometheus", "promtool", "prometheus-alertmanager", "amtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed: run provisioning/deps.sh fleet as root (make up does)", tool)
		}
	}
	prom, rules, am, err := f.monitoringConfig()
	if err != nil {
		return err
	}
	for _, d := range []string{f.path("monitoring", "prometheus-data"), f.path("monitoring", "alertmanager-data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// Prometheus reads the proxies' and mapreduce's /metrics with the
	// admin token, as the role's does (mapreduce takes no other), and the
	// app's with the read token (the app takes no other).
	for _, file := range []struct {
		name, text string
		mode       os.FileMode
	}{
		{"shortfleet.rules.yml", string(rules), 0o644}, {"prometheus.yml", prom, 0o644},
		{"alertmanager.yml", am, 0o600}, {"admin-token", f.Secrets.AdminToken, 0o600},
		{"read-token", f.Secrets.ReadToken, 0o600},
	} {
		if err := os.WriteFile(f.MonitoringFile(file.name), []byte(file.text), file.mode); err != nil {
			return err
		}
	}
	for _, check := range [][]string{{"promtool", "check", "config", f.MonitoringFile("prometheus.yml")}, {"amtool", "check-config", f.MonitoringFile("alertmanager.yml")}} {
		if out, err := exec.CommandContext(ctx, check[0], check[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %w: %s", check, err, out)
		}
	}
	start := func(name string, args ...string) (*proc.Process, error) {
		return proc.Start(proc.Spec{
			Name:              name,
			Command:           func() *exec.Cmd { return exec.Command(name, args...) },
			LogPath:           f.path("logs", name+".log"),
			Restart:           true,
			StopTimeout:       10 * time.Second,
			ParentDeathSignal: syscall.SIGTERM,
		}, f.logger)
	}
	// One Alertmanager, no cluster: no gossip port (fleets side by side
	// would meet on it).
	if f.alertmanager, err = start("prometheus-alertmanager",
		"--config.file="+f.MonitoringFile("alertmanager.yml"),
		"--storage.path="+f.path("monitoring", "alertmanager-data"),
		"--web.listen-address="+net.JoinHostPort(f.monitoringHost(), strconv.Itoa(PortAlertmanager)),
		"--cluster.listen-address="); err != nil {
		return err
	}
	if f.prometheus, err = start("prometheus",
		"--config.file="+f.MonitoringFile("prometheus.yml"),
		"--storage.tsdb.path="+f.path("monitoring", "prometheus-data"),
		"--web.listen-address="+net.JoinHostPort(f.monitoringHost(), strconv.Itoa(PortPrometheus))); err != nil {
		return err
	}
	return waitReady(ctx, map[string]string{
		"alertmanager": f.AlertmanagerURL() + "/-/ready", "prometheus": f.PrometheusURL() + "/-/ready",
	})
}

// waitReady waits until each URL answers 200.
func waitReady(ctx context.Context, urls map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for name, u := range urls {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not ready at %s: %v", name, u, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// stopMonitoring stops Prometheus, then Alertmanager.
func (f *Fleet) stopMonitoring() error {
	var err error
	for _, p := range []**proc.Process{&f.prometheus, &f.alertmanager} {
		if *p != nil {
			if e := (*p).Stop(); e != nil && err == nil {
				err = e
			}
			*p = nil
		}
	}
	return err
}
