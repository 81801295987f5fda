// Package pgcluster creates and runs the PostgreSQL clusters of the local
// fleet and of the tests: a primary made with initdb and hot standbys made
// with pg_basebackup over a physical replication slot.
//
// Postgres refuses to run as root. When the caller is root, every Postgres
// program runs as the "postgres" system user, and each cluster's folder,
// data directory and socket directory belong to that user, on a path it can
// traverse.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/provisioning/patroni"
	"shortfleet/provisioning/proc"
	"shortfleet/provisioning/settings"
)

// Superuser is the role every cluster is created with.
const Superuser = "postgres"

// Config describes one cluster.
type Config struct {
	// Name identifies the cluster in logs, e.g. "primary" or "proxy-01".
	Name string
	// Dir is the cluster's folder: data/ and sock/ live in it.
	Dir string
	// Addr and Port are where the cluster listens.
	Addr string
	Port int
	// Password is the superuser's password, for TCP connections.
	Password string
	// Settings are extra postgresql.conf settings; they override the
	// defaults of Settings().
	Settings map[string]string
	// BinDir holds the Postgres programs; found with pg_config when empty.
	BinDir string
	// Restart makes the supervisor start the server again if it dies
	// (with Patroni: Patroni again; Patroni restarts Postgres itself).
	Restart bool
	// Patroni, when set, runs the cluster as a member of the fleet's
	// Patroni cluster: Start runs Patroni, which makes the data directory
	// (initdb for the first member, a base backup from the leader for the
	// others) and runs Postgres. Init and BaseBackup are not used then.
	Patroni *Patroni
}

// Patroni is what a Patroni member needs beyond the cluster's Config.
type Patroni struct {
	Etcd        []string // host:port of every etcd member
	APIPassword string   // the REST API's unsafe endpoints
	NoFailover  bool     // never promoted (tags nofailover and nosync)
}

// Cluster is one Postgres cluster on this machine.
type Cluster struct {
	cfg    Config
	logger *slog.Logger
	cred   *syscall.Credential // nil unless running as root
	uid    int
	gid    int
	proc   *proc.Process
}

// New prepares a Cluster; it creates nothing until Init or BaseBackup.
func New(cfg Config, logger *slog.Logger) (*Cluster, error) {
	if cfg.BinDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return nil, err
		}
		cfg.BinDir = dir
	}
	c := &Cluster{cfg: cfg, logger: logger.With("cluster", cfg.Name), uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		c.uid, c.gid = uid, gid
	}
	return c, nil
}

// PostgresCanEnter reports, when the caller is root, whether the postgres
// system user can reach dir: every folder on its path that exists must let
// that user through. It returns nil when the caller is not root, whose
// clusters run as the caller. A cluster under a folder the postgres user
// cannot enter (a checkout in /root, which is 0700) would otherwise fail
// in initdb with a bare "permission denied".
func PostgresCanEnter(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the postgres system user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return canTraverse(dir, uid, gid)
}

// canTraverse checks the search (x) permission of every existing folder
// from / down to dir for the user uid of group gid.
func canTraverse(dir string, uid, gid int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	p := "/"
	for _, part := range append([]string{""}, strings.Split(strings.TrimPrefix(abs, "/"), "/")...) {
		p = filepath.Join(p, part)
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil // created later, by us, with the right owner and mode
		}
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		mode := fi.Mode().Perm()
		var bit os.FileMode = 0o001
		switch {
		case int(st.Uid) == uid:
			bit = 0o100
		case int(st.Gid) == gid:
			bit = 0o010
		}
		if mode&bit == 0 {
			return fmt.Errorf("the postgres user cannot enter %s (mode %04o, owner uid %d): keep the clusters on a path it can traverse", p, mode, st.Uid)
		}
	}
	return nil
}

// FindBinDir returns the folder of the newest installed Postgres programs.
func FindBinDir() (string, error) {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		return dir, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	// Debian installs server programs outside PATH, one folder per version.
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))))
		return vi > vj
	})
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	return "", errors.New("no PostgreSQL server programs found (install postgresql, or set PG_BINDIR)")
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Addr is the host:port the cluster listens on.
func (c *Cluster) Addr() string { return net.JoinHostPort(c.cfg.Addr, strconv.Itoa(c.cfg.Port)) }

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return filepath.Join(c.cfg.Dir, "data") }

func (c *Cluster) sockDir() string { return filepath.Join(c.cfg.Dir, "sock") }

// DSN is a postgres:// URL for database db as the superuser.
func (c *Cluster) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Superuser, c.cfg.Password),
		Host:     c.Addr(),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Exists reports whether the cluster's data directory has been created.
func (c *Cluster) Exists() bool {
	_, err := os.Stat(filepath.Join(c.DataDir(), "PG_VERSION"))
	return err == nil
}

// command builds a Postgres program's command, run as the postgres user
// when we are root.
func (c *Cluster) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.BinDir, prog), args...)
	cmd.Dir = c.cfg.Dir
	cmd.Env = append(os.Environ(), "PGPASSWORD="+c.cfg.Password, "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *Cluster) run(ctx context.Context, prog string, args ...string) error {
	out, err := c.command(ctx, prog, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// mkdirOwned creates dir with mode and gives it to the postgres user.
func (c *Cluster) mkdirOwned(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	if c.cred != nil {
		return os.Chown(dir, c.uid, c.gid)
	}
	return nil
}

func (c *Cluster) writeOwned(path, content string, mode os.FileMode) error {
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		return err
	}
	if c.cred != nil {
		return os.Chown(path, c.uid, c.gid)
	}
	return nil
}

func (c *Cluster) prepareDirs() error {
	if c.cred != nil {
		if err := canTraverse(filepath.Dir(c.cfg.Dir), c.uid, c.gid); err != nil {
			return fmt.Errorf("cluster %s: %w", c.cfg.Name, err)
		}
	}
	if err := c.mkdirOwned(c.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("create cluster folder: %w", err)
	}
	if err := c.mkdirOwned(c.sockDir(), 0o700); err != nil {
		return fmt.Errorf("create socket folder: %w", err)
	}
	return nil
}

// Init creates the cluster with initdb, unless it exists already.
func (c *Cluster) Init(ctx context.Context) error {
	if c.Exists() {
		return nil
	}
	if err := c.prepareDirs(); err != nil {
		return err
	}
	pwfile := filepath.Join(c.cfg.Dir, "pwfile")
	if err := c.writeOwned(pwfile, c.cfg.Password+"\n", 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	start := time.Now()
	if err := c.run(ctx, "initdb", "-D", c.DataDir(), "-U", Superuser, "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return fmt.Errorf("init cluster %s: %w", c.cfg.Name, err)
	}
	hba := "# Written by shortfleet's pgcluster.\n" +
		"local all all trust\n" +
		"host all all 127.0.0.0/8 scram-sha-256\n" +
		"host replication all 127.0.0.0/8 scram-sha-256\n"
	if err := c.writeOwned(filepath.Join(c.DataDir(), "pg_hba.conf"), hba, 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(c.DataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\ninclude 'shortfleet.conf'\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("include shortfleet.conf: %w", err)
	}
	c.logger.Info("cluster created", "dir", c.DataDir(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// BaseBackup creates the cluster as a hot standby of primary with
// pg_basebackup, streaming from a physical replication slot named slot
// (created if missing), unless the cluster exists already.
func (c *Cluster) BaseBackup(ctx context.Context, primary *Cluster, slot string) error {
	if c.Exists() {
		return nil
	}
	if err := c.prepareDirs(); err != nil {
		return err
	}
	if err := primary.EnsureSlot(ctx, slot); err != nil {
		return err
	}
	start := time.Now()
	if err := c.run(ctx, "pg_basebackup", "-D", c.DataDir(), "-h", primary.cfg.Addr,
		"-p", strconv.Itoa(primary.cfg.Port), "-U", Superuser, "-X", "stream", "-S", slot,
		"-R", "-c", "fast", "--no-sync"); err != nil {
		os.RemoveAll(c.DataDir())
		return fmt.Errorf("base backup for %s: %w", c.cfg.Name, err)
	}
	c.logger.Info("standby created", "from", primary.Addr(), "slot", slot, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// EnsureSlot creates a physical replication slot unless it exists.
func (c *Cluster) EnsureSlot(ctx context.Context, slot string) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// Reserve WAL at once: a slot that waits for its first client lets a
	// concurrent checkpoint remove WAL the base backup still needs.
	_, err = conn.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true)
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, slot)
	if err != nil {
		return fmt.Errorf("create replication slot %s: %w", slot, err)
	}
	return nil
}

// Settings returns the postgresql.conf settings the cluster runs with: the
// shared settings (provisioning/settings/postgres.json, which the Ansible
// roles deploy too), this host's address, port, socket folder and name,
// and Config.Settings over them.
func (c *Cluster) Settings() map[string]string {
	s := settings.LoadPostgres().Settings
	s["listen_addresses"] = quote(c.cfg.Addr)
	s["port"] = strconv.Itoa(c.cfg.Port)
	s["unix_socket_directories"] = quote(c.sockDir())
	// A standby's walreceiver names itself after the cluster, which is
	// what synchronous_standby_names and pg_stat_replication show.
	s["cluster_name"] = quote(strings.ReplaceAll(c.cfg.Name, "-", "_"))
	for k, v := range c.cfg.Settings {
		s[k] = v
	}
	return s
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (c *Cluster) writeSettings() error {
	return c.writeOwned(filepath.Join(c.DataDir(), "shortfleet.conf"), settings.RenderPostgresConf(c.Settings()), 0o600)
}

// Member is the cluster's Patroni member; Config.Patroni must be set.
func (c *Cluster) Member() patroni.Member {
	return patroni.Member{
		Name: c.cfg.Name, Host: c.cfg.Addr, PGPort: c.cfg.Port,
		DataDir: c.DataDir(), BinDir: c.cfg.BinDir, SockDir: c.sockDir(),
		Etcd: c.cfg.Patroni.Etcd, Password: c.cfg.Password, APIPassword: c.cfg.Patroni.APIPassword,
		Parameters: c.cfg.Settings, NoFailover: c.cfg.Patroni.NoFailover, NoSync: c.cfg.Patroni.NoFailover,
	}
}

// PatroniConfig is the path of the member's Patroni configuration, which
// patronictl -c reads too.
func (c *Cluster) PatroniConfig() string { return filepath.Join(c.cfg.Dir, "patroni.yml") }

// RESTAddr is the member's Patroni REST API address.
func (c *Cluster) RESTAddr() string { return c.Member().RESTAddr() }

// startPatroni runs Patroni for the cluster as a supervised child.
func (c *Cluster) startPatroni(logPath string) (*proc.Process, error) {
	if err := c.prepareDirs(); err != nil {
		return nil, err
	}
	if err := c.writeOwned(c.PatroniConfig(), string(c.Member().YAML()), 0o600); err != nil {
		return nil, fmt.Errorf("write patroni configuration of %s: %w", c.cfg.Name, err)
	}
	return proc.Start(proc.Spec{
		Name: "patroni/" + c.cfg.Name,
		Command: func() *exec.Cmd {
			cmd := exec.Command("patroni", c.PatroniConfig())
			cmd.Dir = c.cfg.Dir
			cmd.Env = append(os.Environ(), "LC_ALL=C")
			if c.cred != nil {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
			}
			return cmd
		},
		LogPath: logPath,
		Restart: c.cfg.Restart,
		// Patroni stops Postgres (fast) and, on the leader, hands the
		// leader key over to the synchronous standby.
		StopSignal:        syscall.SIGTERM,
		StopTimeout:       60 * time.Second,
		ParentDeathSignal: syscall.SIGTERM,
	}, c.logger)
}

// Start runs the server (or, with Config.Patroni, Patroni, which runs it)
// as a supervised child and waits until it accepts connections. logPath
// receives the server's log.
func (c *Cluster) Start(ctx context.Context, logPath string) error {
	var p *proc.Process
	var err error
	if c.cfg.Patroni != nil {
		p, err = c.startPatroni(logPath)
	} else {
		p, err = c.startPostgres(logPath)
	}
	if err != nil {
		return err
	}
	c.proc = p
	if err := c.WaitReady(ctx); err != nil {
		_ = p.Stop()
		c.proc = nil
		return err
	}
	return nil
}

// startPostgres runs the server itself as a supervised child.
func (c *Cluster) startPostgres(logPath string) (*proc.Process, error) {
	if err := c.writeSettings(); err != nil {
		return nil, fmt.Errorf("write settings of %s: %w", c.cfg.Name, err)
	}
	return proc.Start(proc.Spec{
		Name:        "postgres/" + c.cfg.Name,
		Command:     func() *exec.Cmd { return c.command(context.Background(), "postgres", "-D", c.DataDir()) },
		LogPath:     logPath,
		Restart:     c.cfg.Restart,
		StopSignal:  syscall.SIGINT, // fast shutdown
		StopTimeout: 60 * time.Second,
		// Fast shutdown too if the supervisor dies.
		ParentDeathSignal: syscall.SIGINT,
	}, c.logger)
}

// Process is the supervised server process (with Patroni, Patroni's), nil
// before Start.
func (c *Cluster) Process() *proc.Process { return c.proc }

// PostmasterPID is the running server's process id, from postmaster.pid.
func (c *Cluster) PostmasterPID() (int, error) {
	data, err := os.ReadFile(filepath.Join(c.DataDir(), "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("postmaster of %s: %w", c.cfg.Name, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid of %s: %w", c.cfg.Name, err)
	}
	return pid, nil
}

// CrashServer SIGKILLs the server and every process of it, leaving
// Patroni (or, without it, our supervisor) to start it again: the
// database crashed, its host did not.
func (c *Cluster) CrashServer() error {
	pid, err := c.PostmasterPID()
	if err != nil {
		return err
	}
	killTree(pid)
	return nil
}

// killTree SIGKILLs pid and its children, as a host's death would: a
// postmaster's backends would otherwise outlive it for a moment, still
// answering their clients.
func killTree(pid int) {
	for _, p := range ProcessTree(pid) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// ProcessTree is pid and its descendants, from /proc.
func ProcessTree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, childrenOf(out[i])...)
	}
	return out
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after
		// its closing parenthesis.
		i := strings.LastIndexByte(string(data), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// WaitReady waits until the server accepts connections.
func (c *Cluster) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for {
		conn, err := c.Connect(ctx, "postgres")
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		last = err
		if c.proc != nil && !c.cfg.Restart {
			select {
			case <-c.proc.Exited():
				return fmt.Errorf("cluster %s exited while starting: %v", c.cfg.Name, c.proc.Err())
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s not ready: %w (last: %v)", c.cfg.Name, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts the server down (fast shutdown) and waits for it.
func (c *Cluster) Stop() error {
	if c.proc == nil {
		return nil
	}
	err := c.proc.Stop()
	c.proc = nil
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("stop cluster %s: %w", c.cfg.Name, err)
	}
	return err
}

// Kill kills the server with SIGKILL and does not restart it: the host
// died. With Patroni, Patroni and the server die together. Its data
// directory is left as the crash left it.
func (c *Cluster) Kill() {
	if c.proc == nil {
		return
	}
	p := c.proc
	c.proc = nil
	pm, pmErr := c.PostmasterPID()
	if c.cfg.Patroni == nil || pmErr != nil {
		p.Kill()
		return
	}
	// Patroni and the server at once. The server holds Patroni's output
	// (it inherited it), so Patroni's end is seen only once the server
	// is dead too.
	killed := make(chan struct{})
	go func() {
		p.Kill()
		close(killed)
	}()
	killTree(pm)
	<-killed
}

// Host is the address the cluster listens on.
func (c *Cluster) Host() string { return c.cfg.Addr }

// Port is the port the cluster listens on.
func (c *Cluster) Port() int { return c.cfg.Port }

// Password is the superuser's password.
func (c *Cluster) Password() string { return c.cfg.Password }

// Connect opens a connection to database db as the superuser.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(c.DSN(db))
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 2 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// ConnectLocal opens a connection to database db over the cluster's Unix
// socket, as its own host would: it reaches the server whatever happens
// to the network (the partition drill samples roles through it).
func (c *Cluster) ConnectLocal(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", c.sockDir(), c.cfg.Port, Superuser, db))
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 2 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// CreateDatabase creates database name unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// CurrentLSN is the primary's current write-ahead log write position: the
// end of everything committed so far with synchronous_commit on. (Not the
// insert position, which also covers WAL no commit flushed, a page pruned
// by a read, say, that can sit in the WAL buffers for up to 15 s: a
// standby's replay would not reach it until then.)
func (c *Cluster) CurrentLSN(ctx context.Context) (string, error) {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var lsn string
	err = conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn)
	return lsn, err
}

// ReplayStall is how long WaitReplay waits for a standby whose received and
// replayed positions both stand still before it gives up on it. A standby
// that is catching up moves one or the other every few milliseconds, even
// behind a bulk load; one that stands still for this long is not streaming
// (its primary removed the WAL it needs, say, or its replay is paused), and
// waiting on would only hang whoever waits.
const ReplayStall = 2 * time.Minute

// WaitReplay waits until this standby has replayed the write-ahead log up to
// lsn, polling; it never sleeps a fixed time. It gives up when the standby
// has made no progress for ReplayStall (see WaitReplayWithin).
func (c *Cluster) WaitReplay(ctx context.Context, lsn string) error {
	return c.WaitReplayWithin(ctx, lsn, ReplayStall)
}

// WaitReplayWithin is WaitReplay giving up after stall without progress,
// with an error that says where the standby stands: its received and
// replayed positions, its WAL receiver's state and whether replay is paused.
func (c *Cluster) WaitReplayWithin(ctx context.Context, lsn string, stall time.Duration) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var seen string
	moved := time.Now()
	for {
		var done bool
		var at string
		err := conn.QueryRow(ctx, `SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false),
			'received ' || coalesce(pg_last_wal_receive_lsn()::text, 'nothing') || ', replayed ' || coalesce(pg_last_wal_replay_lsn()::text, 'nothing')`, lsn).Scan(&done, &at)
		if err != nil {
			return fmt.Errorf("replay position of %s: %w", c.cfg.Name, err)
		}
		if done {
			return nil
		}
		if at != seen {
			seen, moved = at, time.Now()
		} else if time.Since(moved) >= stall {
			return fmt.Errorf("%s did not replay %s: no progress for %s (%s; %s)", c.cfg.Name, lsn, stall, at, c.receiverState(ctx, conn))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not replay %s: %w", c.cfg.Name, lsn, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// receiverState describes a standby's WAL receiver and replay for an error.
func (c *Cluster) receiverState(ctx context.Context, conn *pgx.Conn) string {
	var receiver, replay string
	err := conn.QueryRow(ctx, `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'no WAL receiver running'),
		pg_get_wal_replay_pause_state()`).Scan(&receiver, &replay)
	if err != nil {
		return "state unknown: " + err.Error()
	}
	return "WAL receiver: " + receiver + ", replay: " + replay
}
