package localfleet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"

	"shortfleet/provisioning/proc"
)

// listenRE finds the address a shortfleet binary reports it bound, e.g.
// msg="listening on http://127.0.0.2:8000" ... listener=http, or https://
// for an app that serves TLS of its own (the primary with -tls-cert).
var listenRE = regexp.MustCompile(`msg="listening on (https?://[^"\s]+)".*\blistener=(\w+)`)

// App is one supervised shortfleet binary.
type App struct {
	Name    string
	bin     string
	args    []string
	env     []string
	logPath string
	logger  *slog.Logger

	mu   sync.Mutex
	urls map[string]string // listener label -> URL, as last reported
	proc *proc.Process
}

func newApp(name, bin string, args, env []string, logPath string, logger *slog.Logger) *App {
	return &App{Name: name, bin: bin, args: args, env: env, logPath: logPath, logger: logger, urls: map[string]string{}}
}

// Start starts the app under supervision and waits until it reports every
// listener in wait.
func (a *App) Start(ctx context.Context, wait ...string) error {
	a.mu.Lock()
	a.urls = map[string]string{}
	a.mu.Unlock()
	p, err := proc.Start(proc.Spec{
		Name: a.Name,
		Command: func() *exec.Cmd {
			cmd := exec.Command(a.bin, a.args...)
			cmd.Env = append(os.Environ(), a.env...)
			return cmd
		},
		LogPath:           a.logPath,
		OnLine:            a.onLine,
		Restart:           true,
		StopTimeout:       30 * time.Second,
		ParentDeathSignal: syscall.SIGTERM,
	}, a.logger)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.proc = p
	a.mu.Unlock()
	return a.WaitListening(ctx, wait...)
}

func (a *App) onLine(line string) {
	if m := listenRE.FindStringSubmatch(line); m != nil {
		a.mu.Lock()
		a.urls[m[2]] = m[1]
		a.mu.Unlock()
	}
}

// WaitListening waits until the app has reported each listener.
func (a *App) WaitListening(ctx context.Context, labels ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		a.mu.Lock()
		missing := ""
		for _, l := range labels {
			if a.urls[l] == "" {
				missing = l
				break
			}
		}
		p := a.proc
		a.mu.Unlock()
		if missing == "" {
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("%s exited before listening: %v (log: %s)", a.Name, p.Err(), a.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s did not report its %s listener: %w (log: %s)", a.Name, missing, ctx.Err(), a.logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URL is the URL the app reported for a listener.
func (a *App) URL(label string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.urls[label]
}

// Process is the supervised process, nil when stopped.
func (a *App) Process() *proc.Process {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc
}

// Stop stops the app with SIGTERM (SIGKILL after 30s) and does not restart
// it; it returns how the process ended.
func (a *App) Stop() error {
	a.mu.Lock()
	p := a.proc
	a.proc = nil
	a.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stop()
}

// LogPath is where the app's output goes.
func (a *App) LogPath() string { return a.logPath }

// Kill SIGKILLs the app and does not restart it: its host died. Start runs
// it again.
func (a *App) Kill() {
	a.mu.Lock()
	p := a.proc
	a.proc = nil
	a.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}
