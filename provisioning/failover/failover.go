// Package failover promotes a hot standby to primary and makes the other
// standbys follow it onto its new timeline (README.md decision 9). It is
// the one code path for a promotion: the local fleet's failover drill runs
// it in-process, and the Ansible playbook promote_replica.yml runs it
// through `fleet promote` on the control node.
//
// The standby promoted is the one that has received the most write-ahead
// log, so with synchronous_standby_names = 'ANY 1 (*)' every commit the old
// primary acknowledged survives. A standby that has replayed past the point
// where the new timeline forks can't follow it; Promote says so, and the
// replica is rebuilt (rebuild_replica.yml).
package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config says which standbys take part and how to reach them.
type Config struct {
	// Candidates are the standbys, host:port each. Every one that answers
	// is either promoted or made to follow the promoted one.
	Candidates []string
	// New, when set, is the candidate to promote; Promote refuses if
	// another candidate has received more of the log.
	New string
	// User and Password reach every candidate, also for replication.
	User     string
	Password string
	// SynchronousStandbyNames, when set, is given to the new primary once
	// its followers stream, so its commits too wait for a standby.
	SynchronousStandbyNames string
	// Timeout bounds the whole promotion (default 2 minutes).
	Timeout time.Duration
}

// Result is what a promotion did.
type Result struct {
	// Primary is the promoted standby, host:port.
	Primary string
	// Promoted is false when Primary already was a primary: a second run
	// of the playbook changes nothing.
	Promoted bool
	// Followers are the standbys now streaming from Primary.
	Followers []string
	// Unreachable are candidates that did not answer; they follow the new
	// primary once they are rebuilt or repointed by a later run.
	Unreachable []string
}

type member struct {
	addr       string
	conn       *pgx.Conn
	inRecovery bool
	received   uint64 // the log position received (standby) or written (primary)
	name       string // cluster_name: its replication slot and application_name
}

// Promote promotes the most advanced candidate (or cfg.New) and repoints
// the others at it. Run again after success, it changes nothing.
func Promote(ctx context.Context, cfg Config, logger *slog.Logger) (Result, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.User == "" {
		cfg.User = "postgres"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var res Result
	var members []*member
	defer func() {
		for _, m := range members {
			m.conn.Close(context.Background())
		}
	}()
	for _, addr := range cfg.Candidates {
		m, err := inspect(ctx, cfg, addr)
		if err != nil {
			logger.Warn("candidate unreachable", "candidate", addr, "err", err)
			res.Unreachable = append(res.Unreachable, addr)
			continue
		}
		members = append(members, m)
	}
	if len(members) == 0 {
		return res, errors.New("no candidate answers")
	}
	// A primary among them: an earlier run promoted it.
	var primary *member
	for _, m := range members {
		if !m.inRecovery {
			if primary != nil {
				return res, fmt.Errorf("both %s and %s are primaries: fence one before going on", primary.addr, m.addr)
			}
			primary = m
		}
	}
	if primary != nil && cfg.New != "" && primary.addr != cfg.New {
		return res, fmt.Errorf("%s is already the primary, not %s", primary.addr, cfg.New)
	}
	if primary == nil {
		best := members[0]
		for _, m := range members[1:] {
			if m.received > best.received {
				best = m
			}
		}
		primary = best
		if cfg.New != "" {
			var named *member
			for _, m := range members {
				if m.addr == cfg.New {
					named = m
				}
			}
			if named == nil {
				return res, fmt.Errorf("%s is not a candidate that answers", cfg.New)
			}
			if named.received < best.received {
				return res, fmt.Errorf("refusing to promote %s: %s has received more of the log (%s > %s); promoting it would lose commits",
					named.addr, best.addr, lsnString(best.received), lsnString(named.received))
			}
			primary = named
		}
		logger.Info("promoting", "standby", primary.addr, "received", lsnString(primary.received))
		if _, err := primary.conn.Exec(ctx, `SELECT pg_promote(true, 60)`); err != nil {
			return res, fmt.Errorf("promote %s: %w", primary.addr, err)
		}
		if err := waitFor(ctx, primary.conn, `SELECT NOT pg_is_in_recovery()`); err != nil {
			return res, fmt.Errorf("promote %s: %w", primary.addr, err)
		}
		res.Promoted = true
	}
	res.Primary = primary.addr
	host, port, err := net.SplitHostPort(primary.addr)
	if err != nil {
		return res, err
	}
	for _, m := range members {
		if m == primary {
			continue
		}
		if err := follow(ctx, cfg, primary, m, host, port); err != nil {
			return res, err
		}
		res.Followers = append(res.Followers, m.addr)
	}
	for _, m := range members {
		if m == primary {
			continue
		}
		if err := waitFor(ctx, m.conn, `SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver
			WHERE status = 'streaming' AND sender_host = $1 AND sender_port = $2)`, host, port); err != nil {
			return res, fmt.Errorf("%s does not stream from %s (it may have replayed past the new timeline's fork; rebuild it): %w", m.addr, primary.addr, err)
		}
		logger.Info("standby follows the new primary", "standby", m.addr, "primary", primary.addr)
	}
	if cfg.SynchronousStandbyNames != "" {
		for _, q := range []string{"ALTER SYSTEM SET synchronous_standby_names = " + cfg.SynchronousStandbyNames, "SELECT pg_reload_conf()"} {
			if _, err := primary.conn.Exec(ctx, q); err != nil {
				return res, fmt.Errorf("synchronous standbys on %s: %w", primary.addr, err)
			}
		}
	}
	return res, nil
}

func inspect(ctx context.Context, cfg Config, addr string) (*member, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("candidate %q is not host:port: %w", addr, err)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(cfg.User, cfg.Password), Host: net.JoinHostPort(host, port), Path: "/postgres", RawQuery: "sslmode=disable&connect_timeout=3"}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return nil, err
	}
	m := &member{addr: addr, conn: conn}
	var lsn string
	err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		CASE WHEN pg_is_in_recovery()
			THEN greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), coalesce(pg_last_wal_replay_lsn(), '0/0'))
			ELSE pg_current_wal_lsn() END::text,
		current_setting('cluster_name')`).Scan(&m.inRecovery, &lsn, &m.name)
	if err == nil {
		m.received, err = parseLSN(lsn)
	}
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("inspect %s: %w", addr, err)
	}
	if m.name == "" {
		m.name = "standby_" + strings.NewReplacer(".", "_", ":", "_").Replace(addr)
	}
	return m, nil
}

// follow points standby m at the new primary: a replication slot for it
// there, then its primary_conninfo and primary_slot_name, reloaded.
func follow(ctx context.Context, cfg Config, primary, m *member, host, port string) error {
	if _, err := primary.conn.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true)
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, m.name); err != nil {
		return fmt.Errorf("create slot %s on %s: %w", m.name, primary.addr, err)
	}
	conninfo := fmt.Sprintf("host=%s port=%s user=%s password=%s application_name=%s",
		conninfoValue(host), conninfoValue(port), conninfoValue(cfg.User), conninfoValue(cfg.Password), conninfoValue(m.name))
	for _, q := range []string{
		`ALTER SYSTEM SET primary_conninfo = ` + literal(conninfo),
		`ALTER SYSTEM SET primary_slot_name = ` + literal(m.name),
		`SELECT pg_reload_conf()`,
	} {
		if _, err := m.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("repoint %s: %w", m.addr, err)
		}
	}
	return nil
}

// waitFor polls a boolean query until it is true.
func waitFor(ctx context.Context, conn *pgx.Conn, q string, args ...any) error {
	for {
		var ok bool
		if err := conn.QueryRow(ctx, q, args...).Scan(&ok); err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("log position %q is not like 0/3000060", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("log position %q is not like 0/3000060", s)
	}
	return h<<32 | l, nil
}

func lsnString(v uint64) string { return fmt.Sprintf("%X/%X", v>>32, uint32(v)) }

// conninfoValue quotes a libpq connection string value.
func conninfoValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// literal quotes a SQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
