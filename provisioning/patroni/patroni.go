// Package patroni writes the configuration of a Patroni member of the
// fleet's one Postgres cluster and reads the cluster's state from
// Patroni's REST API. Patroni (Debian's 3.0) runs every Postgres of the
// fleet, the primary and each proxy host's replica, with a three-member
// etcd as its store: it bootstraps the primary, builds the replicas, keeps
// one of them synchronous, promotes one when the primary is lost and
// rewinds an old primary to follow the new one (README.md, "Failover").
// The local fleet renders its members here; the Ansible role patroni
// renders the same settings (provisioning/settings/patroni.json) from a
// template.
package patroni

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"shortfleet/provisioning/settings"
)

// APIUser is the user of the REST API's unsafe endpoints (switchover,
// restart, configuration changes); reading the cluster's state needs none.
const APIUser = "patroni"

// Member describes one Patroni member: a Postgres on one host.
type Member struct {
	// Name is the member's name in the cluster (the host's name), which is
	// also the application_name its standby connection reports.
	Name string
	// Host is the address Postgres and the REST API listen on.
	Host   string
	PGPort int
	// DataDir, BinDir and SockDir: the data directory (made by Patroni),
	// the Postgres programs, the Unix socket folder.
	DataDir, BinDir, SockDir string
	// Etcd is host:port of every etcd member.
	Etcd []string
	// Password is the Postgres superuser's, which also replicates and runs
	// pg_rewind.
	Password string
	// APIPassword guards the REST API's unsafe endpoints.
	APIPassword string
	// Parameters are this member's Postgres settings over the shared ones
	// (postgres.json), as postgresql.conf values.
	Parameters map[string]string
	// NoFailover keeps the member from ever being promoted, NoSync from
	// being the synchronous standby: for a replica on a host too weak or
	// too far to be the primary.
	NoFailover, NoSync bool
}

// RESTAddr is the member's REST API address.
func (m Member) RESTAddr() string {
	return net.JoinHostPort(m.Host, strconv.Itoa(settings.LoadPatroni().RESTPort))
}

// Config is the member's Patroni configuration.
func (m Member) Config() map[string]any {
	s := settings.LoadPatroni()
	params := map[string]any{}
	for k, v := range settings.LoadPostgres().Settings {
		params[k] = Unquote(v)
	}
	for k, v := range m.Parameters {
		params[k] = Unquote(v)
	}
	dcs := maps.Clone(s.DCS)
	pg, _ := dcs["postgresql"].(map[string]any)
	pg = maps.Clone(pg)
	pg["parameters"] = params
	dcs["postgresql"] = pg
	local := maps.Clone(params)
	local["unix_socket_directories"] = m.SockDir
	auth := map[string]any{"username": "postgres", "password": m.Password}
	return map[string]any{
		"scope": s.Scope,
		"name":  m.Name,
		"log":   map[string]any{"level": "INFO"},
		"restapi": map[string]any{
			"listen":          m.RESTAddr(),
			"connect_address": m.RESTAddr(),
			"authentication":  map[string]any{"username": APIUser, "password": m.APIPassword},
		},
		"etcd3": map[string]any{"hosts": m.Etcd},
		"bootstrap": map[string]any{
			"dcs":    dcs,
			"initdb": []any{map[string]any{"encoding": "UTF8"}, "no-locale", map[string]any{"auth-host": "scram-sha-256"}, map[string]any{"auth-local": "trust"}},
		},
		"postgresql": map[string]any{
			"listen":          net.JoinHostPort(m.Host, strconv.Itoa(m.PGPort)),
			"connect_address": net.JoinHostPort(m.Host, strconv.Itoa(m.PGPort)),
			"data_dir":        m.DataDir,
			// Patroni talks to its own Postgres over the Unix socket:
			// what happens to the network must not cut it off from the
			// server it manages.
			"use_unix_socket": true,
			"bin_dir":         m.BinDir,
			"pgpass":          filepath.Join(filepath.Dir(m.DataDir), "pgpass"),
			"pg_hba": []string{
				"local all all trust",
				"host all all 127.0.0.0/8 scram-sha-256",
				"host replication all 127.0.0.0/8 scram-sha-256",
			},
			"authentication": map[string]any{"superuser": auth, "replication": auth, "rewind": auth},
			"parameters":     local,
			"basebackup":     []any{map[string]any{"checkpoint": "fast"}},
		},
		"tags": map[string]any{"nofailover": m.NoFailover, "nosync": m.NoSync, "noloadbalance": false, "clonefrom": false},
	}
}

// YAML is the member's configuration file: JSON, which is YAML too.
func (m Member) YAML() []byte {
	data, err := json.MarshalIndent(m.Config(), "", "  ")
	if err != nil {
		panic(err) // maps of strings, numbers and booleans
	}
	return append(data, '\n')
}

// Unquote turns a postgresql.conf value as postgres.json writes it ('%m ')
// into the plain value Patroni wants (it quotes every value itself).
func Unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'")
	}
	return v
}

// State is one member as GET /cluster shows it.
type State struct {
	Name     string `json:"name"`
	Role     string `json:"role"`  // leader, sync_standby, replica, standby_leader
	State    string `json:"state"` // running, streaming, starting, stopped, ...
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Timeline int    `json:"timeline"`
	Lag      any    `json:"lag"` // bytes, or "unknown"
}

// Cluster is GET /cluster.
type Cluster struct {
	Members []State `json:"members"`
}

// Leader is the leader's state, false when no member leads.
func (c Cluster) Leader() (State, bool) {
	for _, m := range c.Members {
		if m.Role == "leader" {
			return m, true
		}
	}
	return State{}, false
}

// Sync is the synchronous standby's name, "" when none is.
func (c Cluster) Sync() string {
	for _, m := range c.Members {
		if m.Role == "sync_standby" {
			return m.Name
		}
	}
	return ""
}

var client = &http.Client{Timeout: 2 * time.Second}

// GetCluster asks the member whose REST API is at addr for the cluster's
// state (what it read from etcd last).
func GetCluster(ctx context.Context, addr string) (Cluster, error) {
	var c Cluster
	err := get(ctx, addr, "/cluster", &c)
	return c, err
}

// Status is one member's own view of itself, GET /patroni: it needs no
// etcd.
type Status struct {
	Role     string `json:"role"`  // "master" (Patroni 3.0's word for the primary) or "replica"
	State    string `json:"state"` // running, starting, stopped, ...
	Timeline int    `json:"timeline"`
	// FailsafeActive: etcd is out of reach, and this primary goes on
	// because every member answered it (failsafe_mode).
	FailsafeActive bool `json:"failsafe_mode_is_active"`
}

// GetStatus asks the member at addr for its own status.
func GetStatus(ctx context.Context, addr string) (Status, error) {
	var st Status
	err := get(ctx, addr, "/patroni", &st)
	return st, err
}

func get(ctx context.Context, addr, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("patroni %s%s: %w", addr, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("patroni %s%s: %w", addr, path, err)
	}
	// /patroni answers 503 on a member whose Postgres is down, with the
	// same body: the state is what we asked for.
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("patroni %s%s: %d: %w", addr, path, resp.StatusCode, err)
	}
	return nil
}

// Patch changes the cluster-wide configuration through the member at
// addr (PATCH /config), e.g. {"synchronous_mode": false}.
func Patch(ctx context.Context, addr, password string, change map[string]any) error {
	body, _ := json.Marshal(change)
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, "http://"+addr+"/config", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.SetBasicAuth(APIUser, password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("patroni %s PATCH /config: %w", addr, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("patroni %s PATCH /config: %d %s", addr, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return nil
}
