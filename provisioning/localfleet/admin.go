package localfleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"shortfleet/provisioning/pgcluster"
)

// GrantAdmin makes the account with email an admin (who sees the fleet
// page) on the fleet `fleet up` runs from stateDir: it runs binDir's
// `primary grant-admin EMAIL` with the primary database's address, from
// state.json, and password, from secrets.json, and nothing else in its
// environment. It returns the command's output.
func GrantAdmin(ctx context.Context, stateDir, binDir, email string) (string, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no fleet is up in %s: start one with make up", stateDir)
	}
	if err != nil {
		return "", fmt.Errorf("read fleet state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return "", fmt.Errorf("read fleet state: %w", err)
	}
	if data, err = os.ReadFile(filepath.Join(stateDir, "secrets.json")); err != nil {
		return "", fmt.Errorf("read fleet secrets: %w", err)
	}
	var sec Secrets
	if err := json.Unmarshal(data, &sec); err != nil {
		return "", fmt.Errorf("read fleet secrets: %w", err)
	}
	// Every cluster of the fleet, asking for the one that takes writes, as
	// the apps do: after a failover drill the primary is another host.
	dsn := url.URL{
		Scheme: "postgres", User: url.User(pgcluster.Superuser), Host: strings.Join(append([]string{st.PrimaryDB}, st.ReplicaDBs...), ","),
		Path: "/" + Database, RawQuery: "sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "primary"), "grant-admin", email)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHORTFLEET_") && !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "SHORTFLEET_DSN="+dsn.String(), "SHORTFLEET_DB_PASSWORD="+sec.PGPassword)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("primary grant-admin %s: %w", email, err)
	}
	return string(out), nil
}

// StateDir is the fleet's state folder, as an absolute path.
func (f *Fleet) StateDir() string { return f.cfg.StateDir }
