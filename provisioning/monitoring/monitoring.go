// Package monitoring renders Prometheus's and Alertmanager's
// configuration for the local fleet exactly as the Ansible monitoring role
// renders it (prometheus.yml.j2, alertmanager.yml.j2), around the role's
// own alert and inhibit rules (which the caller passes in: package
// roles embeds them), so that what `make up` and the alert test run is
// what is deployed. A test in provisioning/ansible renders both sides for
// the same hosts and checks they are equal byte for byte.
//
// The one difference is time: Speedup divides every duration an operator
// waits on (scrape and evaluation interval, the rules' for:, Alertmanager's
// group_wait, group_interval and repeat_interval) so that a test sees an
// alert fire in seconds; the rules' expressions, thresholds and windows
// stay as they are.
package monitoring

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// Production timings: the monitoring role's defaults.
const (
	ScrapeInterval = 15 * time.Second
	GroupWait      = 30 * time.Second
	GroupInterval  = 5 * time.Minute
	RepeatInterval = 4 * time.Hour
)

// Target is one scrape target: host:port, and the host's name (the
// inventory's, in Ansible), which every alert carries as its host label.
type Target struct {
	Addr string
	Host string
}

// Prometheus is what prometheus.yml says.
type Prometheus struct {
	ScrapeInterval time.Duration
	RulesFile      string
	// Listen is Prometheus's own address, which it scrapes too.
	Listen string
	// Alertmanagers are host:port of the Alertmanagers it sends alerts to.
	Alertmanagers []string
	// TokenFile holds the bearer token (the admin token) for the proxies'
	// and the mapreduce daemon's /metrics.
	TokenFile string
	// ReadTokenFile holds the read token, the only one the primary app's
	// /metrics takes.
	ReadTokenFile string
	// The jobs' targets; a job without targets is left out.
	Proxies, Apps, Mapreduce, HAProxy, PostgresExporter, Patroni []Target
}

// Render returns prometheus.yml.
func (p Prometheus) Render() (string, error) {
	var b strings.Builder
	err := prometheusTemplate.Execute(&b, p)
	return b.String(), err
}

var prometheusTemplate = template.Must(template.New("prometheus.yml").Funcs(template.FuncMap{
	"duration": Duration, "list": jsonList,
}).Parse(`# Written by shortfleet (provisioning/ansible); edits are lost.
global:
  scrape_interval: {{duration .ScrapeInterval}}
  evaluation_interval: {{duration .ScrapeInterval}}

rule_files:
  - {{.RulesFile}}
{{- if .Alertmanagers}}

alerting:
  alertmanagers:
    - static_configs:
        - targets: {{list .Alertmanagers}}
{{- end}}

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["{{.Listen}}"]
{{- define "targets"}}
    static_configs:
{{- range .}}
      - targets: ["{{.Addr}}"]
        labels:
          host: {{.Host}}
{{- end}}
{{- end}}
{{- if .Proxies}}

  # The proxies' admin listeners: /metrics needs the admin token.
  - job_name: shortfleet_proxy
    authorization:
      type: Bearer
      credentials_file: {{.TokenFile}}
{{- template "targets" .Proxies}}
{{- end}}
{{- if .Apps}}

  # The primary app's admin listeners: /metrics needs the read token.
  - job_name: shortfleet_app
    authorization:
      type: Bearer
      credentials_file: {{.ReadTokenFile}}
{{- template "targets" .Apps}}
{{- end}}
{{- if .Mapreduce}}

  # The mapreduce daemon's /metrics needs the admin token too.
  - job_name: shortfleet_mapreduce
    authorization:
      type: Bearer
      credentials_file: {{.TokenFile}}
{{- template "targets" .Mapreduce}}
{{- end}}
{{- if .HAProxy}}

  # HAProxy's built-in exporter on the monitor frontend.
  - job_name: haproxy
{{- template "targets" .HAProxy}}
{{- end}}
{{- if .PostgresExporter}}

  - job_name: postgres
{{- template "targets" .PostgresExporter}}
{{- end}}
{{- if .Patroni}}

  # Patroni's REST API on every Postgres host: whether its Postgres runs,
  # which member leads, whether replay is paused.
  - job_name: patroni
{{- template "targets" .Patroni}}
{{- end}}
`))

// jsonList writes a list of strings as Ansible's to_json does.
func jsonList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Alertmanager is what alertmanager.yml says, for the local fleet: its
// receivers are webhooks only (the role's e-mail receiver is Ansible's
// alone, checked there by amtool).
type Alertmanager struct {
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// Webhooks are the URLs Alertmanager posts each group of alerts to,
	// firing and resolved; none: alerts show on its page only.
	Webhooks []string
	// Inhibit is the role's inhibit rules (roles.AlertmanagerInhibit),
	// the end of the file.
	Inhibit []byte
}

// Render returns alertmanager.yml.
func (a Alertmanager) Render() (string, error) {
	var b strings.Builder
	err := alertmanagerTemplate.Execute(&b, a)
	return b.String() + string(a.Inhibit), err
}

var alertmanagerTemplate = template.Must(template.New("alertmanager.yml").Funcs(template.FuncMap{
	"duration": Duration, "quote": func(s string) string { return fmt.Sprintf("%q", s) },
}).Parse(`# Written by shortfleet (provisioning/ansible); edits are lost.
route:
  receiver: operator
  group_by: [alertname, host]
  group_wait: {{duration .GroupWait}}
  group_interval: {{duration .GroupInterval}}
  repeat_interval: {{duration .RepeatInterval}}

receivers:
  - name: operator
{{- if .Webhooks}}
    webhook_configs:
{{- range .Webhooks}}
      - url: {{quote .}}
        send_resolved: true
{{- end}}
{{- end}}
`))

// Timings are the durations an operator waits on, divided by Speedup.
type Timings struct {
	Speedup int
}

// Div divides d by the speedup (1 when unset).
func (t Timings) Div(d time.Duration) time.Duration {
	if t.Speedup <= 1 {
		return d
	}
	return d / time.Duration(t.Speedup)
}

// Duration writes d as Prometheus and Alertmanager read durations: whole
// hours, minutes, seconds or milliseconds ("15s", "5m", "4h", "500ms").
func Duration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

var forLine = regexp.MustCompile(`(?m)^(\s+for: )(\S+)$`)

// Rules returns the role's alert rules (roles.Rules) with every for:
// divided by the speedup; with none, the file as it is.
func (t Timings) Rules(rules []byte) ([]byte, error) {
	var err error
	out := forLine.ReplaceAllFunc(rules, func(line []byte) []byte {
		m := forLine.FindSubmatch(line)
		d, perr := time.ParseDuration(string(m[2]))
		if perr != nil {
			err = fmt.Errorf("rules: for: %s: %w", m[2], perr)
			return line
		}
		return []byte(string(m[1]) + Duration(t.Div(d)))
	})
	return out, err
}

// For returns each alert's for: in rules (0 for an alert without one).
func For(rules []byte) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	name := ""
	for _, line := range strings.Split(string(rules), "\n") {
		l := strings.TrimSpace(line)
		if a, ok := strings.CutPrefix(l, "- alert: "); ok {
			name = a
			out[name] = 0
		} else if f, ok := strings.CutPrefix(l, "for: "); ok && name != "" {
			d, err := time.ParseDuration(f)
			if err != nil {
				return nil, fmt.Errorf("alert %s: for: %s: %w", name, f, err)
			}
			out[name] = d
		}
	}
	return out, nil
}
