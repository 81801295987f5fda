package hostinit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"shortfleet/provisioning/proc"
)

// Socket is where the init (the hostinit command) listens on its host,
// and its systemctl asks.
const Socket = "/run/shortfleet-init.sock"

// WantsDir holds the symlinks of enabled units, as systemctl enable makes.
const WantsDir = "/etc/systemd/system/multi-user.target.wants"

// LogDir receives each service's output, one file a unit.
const LogDir = "/var/log/hostinit"

// Status is what `systemctl show` reports of a unit.
type Status struct {
	Name        string `json:"name"`
	Found       bool   `json:"found"`
	Active      string `json:"active"` // active, inactive or failed
	MainPID     int    `json:"main_pid"`
	Enabled     bool   `json:"enabled"`
	Restarts    int    `json:"restarts"`
	LastFailure string `json:"last_failure,omitempty"`
}

// Init supervises a host's services.
type Init struct {
	logger *slog.Logger
	mu     sync.Mutex
	svcs   map[string]*service
}

type service struct {
	unit   *Unit
	env    map[string]string
	proc   *proc.Process // simple services
	pid    int           // forking services: the daemon's pid from PIDFile
	done   bool          // oneshot services that remain after exit
	failed string
}

// running reports whether the service is up.
func (s *service) running() bool {
	switch {
	case s.proc != nil:
		return s.proc.Running()
	case s.pid > 0:
		return syscall.Kill(s.pid, 0) == nil
	}
	return s.done
}

func (s *service) mainPID() int {
	switch {
	case s.proc != nil && s.proc.Running():
		return s.proc.Pid()
	case s.pid > 0:
		return s.pid
	}
	return 0
}

// New returns an Init for the host it runs on.
func New(logger *slog.Logger) *Init {
	return &Init{logger: logger, svcs: map[string]*service{}}
}

// Boot makes the runtime folders the packages ask for (tmpfiles.d) and
// starts every enabled unit, as a host's start does.
func (in *Init) Boot() {
	if out, err := exec.Command("systemd-tmpfiles", "--create", "--boot").CombinedOutput(); err != nil {
		in.logger.Warn("systemd-tmpfiles", "err", err, "out", string(out))
	}
	entries, _ := os.ReadDir(WantsDir)
	for _, e := range entries {
		if err := in.Start(e.Name()); err != nil {
			in.logger.Error("boot: start failed", "unit", e.Name(), "err", err)
		}
	}
}

func canonical(name string) string {
	if filepath.Ext(name) == "" {
		return name + ".service"
	}
	return name
}

// Start starts a unit unless it runs.
func (in *Init) Start(name string) error {
	name = canonical(name)
	in.mu.Lock()
	defer in.mu.Unlock()
	if s := in.svcs[name]; s != nil {
		if s.running() {
			return nil
		}
		if s.proc != nil {
			// Down, and waiting to be restarted: this start replaces it.
			s.proc.Stop()
		}
	}
	u, err := FindUnit("/", name)
	if err != nil {
		return err
	}
	env := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	var list []string
	for _, f := range u.EnvironmentFiles {
		path, optional := strings.CutPrefix(f, "-")
		vals, err := ReadEnvironmentFile(path)
		if err != nil && !(optional && errors.Is(err, os.ErrNotExist)) {
			return fmt.Errorf("%s: EnvironmentFile: %w", name, err)
		}
		list = append(list, vals...)
	}
	for _, kv := range append(u.Environment, list...) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cred, err := credential(u)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	command := func(words []string) *exec.Cmd {
		args := Expand(words, env)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = u.WorkingDirectory
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return cmd
	}
	for _, pre := range u.ExecStartPre {
		if out, err := command(pre).CombinedOutput(); err != nil {
			in.svcs[name] = &service{unit: u, env: env, failed: fmt.Sprintf("ExecStartPre: %v: %s", err, out)}
			return fmt.Errorf("%s: ExecStartPre %v: %w: %s", name, pre, err, out)
		}
	}
	if err := os.MkdirAll(LogDir, 0o755); err != nil {
		return err
	}
	switch u.Type {
	case "oneshot":
		for _, words := range append([][]string{u.ExecStart}, u.ExecStartPost...) {
			if out, err := command(words).CombinedOutput(); err != nil {
				in.svcs[name] = &service{unit: u, env: env, failed: fmt.Sprintf("%v: %s", err, out)}
				return fmt.Errorf("%s: ExecStart %v: %w: %s", name, words, err, out)
			}
		}
		in.svcs[name] = &service{unit: u, env: env, done: u.RemainAfterExit}
		return nil
	case "forking":
		// ExecStart starts the daemon and returns; its pid is in PIDFile.
		os.Remove(u.PIDFile)
		if out, err := command(u.ExecStart).CombinedOutput(); err != nil {
			in.logger.Warn("ExecStart failed", "unit", name, "err", err, "out", string(out))
		}
		pid, err := waitPIDFile(u.PIDFile, time.Minute)
		if err != nil {
			in.svcs[name] = &service{unit: u, env: env, failed: err.Error()}
			return fmt.Errorf("%s: %w", name, err)
		}
		in.svcs[name] = &service{unit: u, env: env, pid: pid}
		return nil
	}
	p, err := proc.Start(proc.Spec{
		Name:              name,
		Command:           func() *exec.Cmd { return command(u.ExecStart) },
		LogPath:           filepath.Join(LogDir, name+".log"),
		Restart:           u.Restart,
		StopTimeout:       30 * time.Second,
		ParentDeathSignal: syscall.SIGTERM,
	}, in.logger)
	if err != nil {
		in.svcs[name] = &service{unit: u, env: env, failed: err.Error()}
		return err
	}
	in.svcs[name] = &service{unit: u, env: env, proc: p}
	return nil
}

func credential(u *Unit) (*syscall.Credential, error) {
	if u.User == "" || u.User == "root" {
		return nil, nil
	}
	usr, err := user.Lookup(u.User)
	if err != nil {
		return nil, fmt.Errorf("User=%s: %w", u.User, err)
	}
	uid, _ := strconv.Atoi(usr.Uid)
	gid, _ := strconv.Atoi(usr.Gid)
	if u.Group != "" {
		g, err := user.LookupGroup(u.Group)
		if err != nil {
			return nil, fmt.Errorf("Group=%s: %w", u.Group, err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// Stop stops a unit if it runs.
func (in *Init) Stop(name string) error {
	name = canonical(name)
	in.mu.Lock()
	s := in.svcs[name]
	delete(in.svcs, name)
	in.mu.Unlock()
	if s == nil {
		return nil
	}
	if s.proc != nil {
		if err := s.proc.Stop(); err != nil {
			in.logger.Warn("stopped with an error", "unit", name, "err", err)
		}
		return nil
	}
	if s.pid <= 0 || syscall.Kill(s.pid, 0) != nil {
		return nil
	}
	env := map[string]string{"MAINPID": strconv.Itoa(s.pid)}
	maps.Copy(env, s.env)
	for _, words := range s.unit.ExecStop {
		args := Expand(words, env)
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			in.logger.Warn("ExecStop failed", "unit", name, "err", err, "out", string(out))
		}
	}
	if len(s.unit.ExecStop) == 0 {
		syscall.Kill(s.pid, syscall.SIGTERM)
	}
	for deadline := time.Now().Add(time.Minute); syscall.Kill(s.pid, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(s.pid, syscall.SIGKILL)
			break
		}
	}
	return nil
}

// waitPIDFile waits for a forking daemon's pid file.
func waitPIDFile(path string, limit time.Duration) (int, error) {
	if path == "" {
		return 0, errors.New("Type=forking without PIDFile is not supported here")
	}
	deadline := time.Now().Add(limit)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			line, _, _ := strings.Cut(string(data), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 0 {
				return pid, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no pid in %s after %s", path, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart stops and starts a unit.
func (in *Init) Restart(name string) error {
	if err := in.Stop(name); err != nil {
		return err
	}
	return in.Start(name)
}

// Reload runs the unit's ExecReload lines with $MAINPID set; a unit
// without any is restarted, as reload-or-restart does.
func (in *Init) Reload(name string) error {
	name = canonical(name)
	in.mu.Lock()
	s := in.svcs[name]
	in.mu.Unlock()
	if s == nil || !s.running() || len(s.unit.ExecReload) == 0 {
		return in.Restart(name)
	}
	env := map[string]string{"MAINPID": strconv.Itoa(s.mainPID())}
	for k, v := range s.env {
		env[k] = v
	}
	for _, words := range s.unit.ExecReload {
		args := Expand(words, env)
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: ExecReload %v: %w: %s", name, args, err, out)
		}
	}
	return nil
}

// Status reports a unit.
func (in *Init) Status(name string) Status {
	name = canonical(name)
	st := Status{Name: name, Active: "inactive"}
	if _, err := FindUnit("/", name); err == nil {
		st.Found = true
	}
	if _, err := os.Lstat(filepath.Join(WantsDir, name)); err == nil {
		st.Enabled = true
	}
	in.mu.Lock()
	s := in.svcs[name]
	in.mu.Unlock()
	switch {
	case s == nil:
	case s.running():
		st.Active, st.MainPID = "active", s.mainPID()
		if s.proc != nil {
			st.Restarts = s.proc.Restarts()
		}
	case s.failed != "":
		st.Active, st.LastFailure = "failed", s.failed
	case s.unit.Type == "oneshot":
	default:
		st.Active = "failed"
		if s.proc != nil && s.proc.Err() != nil {
			st.LastFailure = s.proc.Err().Error()
		}
	}
	return st
}

// StopAll stops every service, as a host's shutdown does.
func (in *Init) StopAll() {
	in.mu.Lock()
	names := make([]string, 0, len(in.svcs))
	for n := range in.svcs {
		names = append(names, n)
	}
	in.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { in.Stop(n) })
	}
	wg.Wait()
}

// Handler serves the socket: POST /{action}/{unit} and GET /status/{unit}.
func (in *Init) Handler() http.Handler {
	mux := http.NewServeMux()
	act := func(f func(string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := f(r.PathValue("unit")); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.Handle("POST /start/{unit}", act(in.Start))
	mux.Handle("POST /stop/{unit}", act(in.Stop))
	mux.Handle("POST /restart/{unit}", act(in.Restart))
	mux.Handle("POST /reload/{unit}", act(in.Reload))
	mux.HandleFunc("GET /status/{unit}", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(in.Status(r.PathValue("unit")))
	})
	return mux
}

// Run is a host's init: it gives the services systemd's descriptor
// limits, starts the enabled units and serves systemctl until ctx ends,
// then stops every service.
func Run(ctx context.Context, logger *slog.Logger) error {
	// systemd's default for services: a soft limit of 1024 descriptors
	// and a hard one of 524288, which daemons such as HAProxy raise to.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 1024, Max: 524288}); err != nil {
		logger.Warn("could not set the services' descriptor limit", "err", err)
	}
	in := New(logger)
	in.Boot()
	return in.Serve(ctx)
}

// Serve listens on Socket until ctx ends, then stops every service.
func (in *Init) Serve(ctx context.Context) error {
	os.Remove(Socket)
	ln, err := net.Listen("unix", Socket)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: in.Handler()}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	in.logger.Info("init serving", "socket", Socket)
	err = srv.Serve(ln)
	in.StopAll()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Client asks a host's init.
func Client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", Socket)
		},
	}, Timeout: 2 * time.Minute}
}
