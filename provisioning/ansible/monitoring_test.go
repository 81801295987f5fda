package ansible

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shortfleet/provisioning/ansible/roles"
	"shortfleet/provisioning/monitoring"
)

// exampleTargets are hosts of the example inventory as scrape targets on
// port: db-primary at 192.0.2.10, then proxy-01.. at 198.51.100.11...
func exampleTargets(port int, primary bool) []monitoring.Target {
	var t []monitoring.Target
	if primary {
		t = append(t, monitoring.Target{Addr: fmt.Sprintf("192.0.2.10:%d", port), Host: "db-primary"})
	}
	for _, s := range inventoryServers() {
		t = append(t, monitoring.Target{Addr: fmt.Sprintf("%s:%d", s.Addr, port), Host: s.Name})
	}
	return t
}

// TestMonitoringMatchesAnsible compares Prometheus's and Alertmanager's
// configuration rendered by Ansible (the monitoring role's templates, the
// example inventory's mapreduce-01) with provisioning/monitoring's, which
// the local fleet runs, for the same hosts: byte for byte.
func TestMonitoringMatchesAnsible(t *testing.T) {
	t.Parallel()
	dir := rendered(t)
	prom := monitoring.Prometheus{
		ScrapeInterval: monitoring.ScrapeInterval,
		RulesFile:      filepath.Join(dir, promRules), TokenFile: filepath.Join(dir, promToken), ReadTokenFile: filepath.Join(dir, promRead),
		Listen: "192.0.2.20:9090", Alertmanagers: []string{"192.0.2.20:9093"},
		Proxies: exampleTargets(9090, false),
		// The example inventory's group apps.
		Apps:      []monitoring.Target{{Addr: "192.0.2.10:9091", Host: "db-primary"}, {Addr: "198.51.100.11:9091", Host: "proxy-01"}},
		Mapreduce: []monitoring.Target{{Addr: "192.0.2.20:9100", Host: "mapreduce-01"}},
		HAProxy:   []monitoring.Target{{Addr: "192.0.2.5:8404", Host: "lb-01"}, {Addr: "192.0.2.6:8404", Host: "lb-02"}},
		// The Postgres hosts: Patroni, and the exporter when asked for.
		PostgresExporter: exampleTargets(9187, true),
		Patroni:          exampleTargets(8008, true),
	}
	ownAM := prom
	ownAM.Alertmanagers = []string{"192.0.2.30:9093", "192.0.2.31:9093"}
	ownAM.PostgresExporter = nil
	am := monitoring.Alertmanager{GroupWait: monitoring.GroupWait, GroupInterval: monitoring.GroupInterval, RepeatInterval: monitoring.RepeatInterval, Inhibit: roles.AlertmanagerInhibit}
	withHooks := am
	withHooks.Webhooks = amWebhooks
	for _, c := range []struct {
		out    string
		render func() (string, error)
	}{
		{"prometheus.yml", prom.Render},
		{"prometheus-own-am.yml", ownAM.Render},
		{"alertmanager-none.yml", am.Render},
		{"alertmanager-webhook.yml", withHooks.Render},
	} {
		t.Run(c.out, func(t *testing.T) {
			want, err := c.render()
			if err != nil {
				t.Fatal(err)
			}
			sameText(t, c.out, readFile(t, filepath.Join(dir, c.out)), want)
		})
	}
}

// TestAlertmanager checks the role's Alertmanager configurations with
// amtool, then runs a real Alertmanager on the defaults' and posts to it
// the alerts a dead proxy host raises, and then those of every proxy
// down: each narrower alert is held back (inhibited) while the wider one
// fires, and alerts of other hosts are not.
func TestAlertmanager(t *testing.T) {
	t.Parallel()
	need(t, "amtool", "prometheus-alertmanager")
	dir := rendered(t)
	for _, name := range []string{"alertmanager-none.yml", "alertmanager-webhook.yml", "alertmanager-email.yml"} {
		out, err := exec.Command("amtool", "check-config", filepath.Join(dir, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("amtool check-config %s: %v\n%s", name, err, out)
		}
		// amtool names what it read: the e-mail and webhook receivers
		// are there (one receiver, operator, with its integrations).
		if !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("amtool check-config %s:\n%s", name, out)
		}
	}
	if text := readFile(t, filepath.Join(dir, "alertmanager-email.yml")); !strings.Contains(text, `- to: "oncall@example.com"`) || !strings.Contains(text, `smtp_auth_password: "secret"`) {
		t.Errorf("the e-mail receiver is not configured:\n%s", text)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var log bytes.Buffer
	cmd := exec.Command("prometheus-alertmanager", "--config.file="+filepath.Join(dir, "alertmanager-none.yml"),
		"--storage.path="+t.TempDir(), "--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager's log:\n%s", log.String())
		}
	})
	base := "http://" + addr + "/api/v2"
	alert := func(name, host string) map[string]any {
		labels := map[string]string{"alertname": name, "severity": "page"}
		if host != "" {
			labels["host"] = host
		}
		return map[string]any{"labels": labels, "endsAt": time.Now().Add(time.Hour).Format(time.RFC3339)}
	}
	post := func(alerts ...map[string]any) {
		body, _ := json.Marshal(alerts)
		for {
			resp, err := http.Post(base+"/alerts", "application/json", bytes.NewReader(body))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("post alerts to Alertmanager: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// wait waits until Alertmanager holds back exactly the alerts named
	// "alertname@host" in held, of those it has.
	wait := func(held ...string) {
		t.Helper()
		var got []string
		for {
			got = nil
			resp, err := http.Get(base + "/alerts")
			if err != nil {
				t.Fatal(err)
			}
			var alerts []struct {
				Labels map[string]string `json:"labels"`
				Status struct {
					InhibitedBy []string `json:"inhibitedBy"`
				} `json:"status"`
			}
			err = json.NewDecoder(resp.Body).Decode(&alerts)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range alerts {
				if len(a.Status.InhibitedBy) > 0 {
					got = append(got, a.Labels["alertname"]+"@"+a.Labels["host"])
				}
			}
			slices.Sort(got)
			slices.Sort(held)
			if slices.Equal(got, held) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("Alertmanager holds back %v, want %v", got, held)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// proxy-01's host is down: its proxy's and its database member's
	// alerts are held back; proxy-02's proxy alone, and the mapreduce
	// host, are not.
	post(alert("ShortfleetHostDown", "proxy-01"), alert("ShortfleetProxyDown", "proxy-01"),
		alert("ShortfleetDatabaseMemberDown", "proxy-01"), alert("ShortfleetProxyDown", "proxy-02"),
		alert("ShortfleetMapreduceDown", "mapreduce-01"))
	wait("ShortfleetDatabaseMemberDown@proxy-01", "ShortfleetProxyDown@proxy-01")
	// Then no proxy answers: every proxy's alerts, and the balancer's
	// empty rotation, are held back too.
	post(alert("ShortfleetAllProxiesDown", ""), alert("ShortfleetNoProxyInRotation", "lb-01"), alert("ShortfleetProxyNotReady", "proxy-03"))
	wait("ShortfleetDatabaseMemberDown@proxy-01", "ShortfleetProxyDown@proxy-01", "ShortfleetProxyDown@proxy-02",
		"ShortfleetNoProxyInRotation@lb-01", "ShortfleetProxyNotReady@proxy-03")
}
