// Package proc runs and supervises the local fleet's child processes, the
// way systemd does on a bare-metal host (README.md decision 10): a child that
// exits without being asked to is started again after a backoff, its output
// is appended to a log file, and a stop is a signal followed, after a
// timeout, by SIGKILL.
package proc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Spec says how to run one supervised process.
type Spec struct {
	// Name identifies the process in logs.
	Name string
	// Command returns a fresh, unstarted command for each (re)start.
	Command func() *exec.Cmd
	// LogPath, when set, receives the process's stdout and stderr.
	LogPath string
	// OnLine, when set, is called with each line of output.
	OnLine func(line string)
	// Restart starts the process again when it exits unasked.
	Restart bool
	// StopSignal asks the process to stop; SIGTERM when nil.
	StopSignal os.Signal
	// StopTimeout is how long Stop waits before SIGKILL; 30s when zero.
	StopTimeout time.Duration
	// ParentDeathSignal, when set, is sent to the child if the supervisor
	// dies, so a crashed supervisor leaves no orphans behind.
	ParentDeathSignal syscall.Signal
}

// Process is a running, supervised child.
type Process struct {
	spec   Spec
	logger *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current child has exited
	stopping bool
	restarts int
	lastErr  error

	done chan struct{} // closed when supervision ends
}

// Start starts the process and supervises it until Stop.
func Start(spec Spec, logger *slog.Logger) (*Process, error) {
	if spec.StopSignal == nil {
		spec.StopSignal = syscall.SIGTERM
	}
	if spec.StopTimeout == 0 {
		spec.StopTimeout = 30 * time.Second
	}
	p := &Process{spec: spec, logger: logger.With("process", spec.Name), done: make(chan struct{})}
	p.mu.Lock()
	err := p.startOnceLocked()
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	go p.supervise()
	return p, nil
}

// startOnceLocked starts the child; p.mu is held.
func (p *Process) startOnceLocked() error {
	cmd := p.spec.Command()
	var out io.Writer = io.Discard
	var logFile *os.File
	if p.spec.LogPath != "" {
		f, err := os.OpenFile(p.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log of %s: %w", p.spec.Name, err)
		}
		logFile, out = f, f
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return fmt.Errorf("pipe for %s: %w", p.spec.Name, err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Own process group, so a terminal's Ctrl-C reaches only the supervisor,
	// which then stops children in order.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = p.spec.ParentDeathSignal
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		if logFile != nil {
			logFile.Close()
		}
		return fmt.Errorf("start %s: %w", p.spec.Name, err)
	}
	pw.Close()
	exited := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if p.spec.OnLine != nil {
				p.spec.OnLine(line)
			}
		}
		_, _ = io.Copy(out, pr) // an over-long line: keep the rest
		pr.Close()
		if logFile != nil {
			logFile.Close()
		}
	}()
	go func() {
		err := cmd.Wait()
		// The last lines first; but a grandchild that inherited the
		// output (Patroni's Postgres) keeps the pipe open after the
		// child's death, and the child is dead all the same.
		select {
		case <-copied:
		case <-time.After(time.Second):
		}
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	p.logger.Debug("started", "pid", cmd.Process.Pid)
	return nil
}

func (p *Process) supervise() {
	defer close(p.done)
	backoff := 100 * time.Millisecond
	for {
		p.mu.Lock()
		exited, started := p.exited, time.Now()
		p.mu.Unlock()
		<-exited
		p.mu.Lock()
		stopping, err := p.stopping, p.lastErr
		p.mu.Unlock()
		if stopping || !p.spec.Restart {
			if !stopping {
				p.logger.Warn("exited", "err", err)
			}
			return
		}
		if time.Since(started) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		p.logger.Warn("exited unasked; restarting", "err", err, "in", backoff)
		time.Sleep(backoff)
		backoff = min(backoff*2, 5*time.Second)
		if !p.restart(backoff) {
			return
		}
	}
}

// restart starts the child again unless a Stop or Kill came first,
// retrying a failed start every backoff. The check and the start are one
// step under the lock: a Stop in between would otherwise find the dead
// child, and the new one would outlive it, supervised by nobody.
func (p *Process) restart(backoff time.Duration) bool {
	for {
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return false
		}
		err := p.startOnceLocked()
		if err == nil {
			p.restarts++
		}
		p.mu.Unlock()
		if err == nil {
			return true
		}
		p.logger.Error("restart failed", "err", err)
		time.Sleep(backoff)
	}
}

// Pid is the current child's process id.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Restarts counts how many times the process was started again.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Running reports whether the current child has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Exited is closed when supervision has ended: after Stop, or when a process
// that is not restarted exits.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Err is how the last child ended.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// Signal sends sig to the current child without changing supervision: a
// SIGKILL this way is a crash, and the supervisor restarts the child.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Signal(sig)
}

// Kill ends supervision and kills the current child with SIGKILL, as a
// crash that nothing restarts: a host that died. It waits for the child.
func (p *Process) Kill() {
	p.mu.Lock()
	p.stopping = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	_ = cmd.Process.Kill()
	<-exited
	<-p.done
}

// Stop asks the process to stop with its stop signal, waits up to the stop
// timeout, then kills it. It does not restart it. It returns how the child
// ended: nil for a clean exit.
func (p *Process) Stop() error {
	p.mu.Lock()
	p.stopping = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	select {
	case <-exited:
	default:
		_ = cmd.Process.Signal(p.spec.StopSignal)
		select {
		case <-exited:
		case <-time.After(p.spec.StopTimeout):
			p.logger.Warn("did not stop in time; killing", "timeout", p.spec.StopTimeout)
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	<-p.done
	err := p.Err()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() && ee.ExitCode() == 0 {
		err = nil
	}
	return err
}
