package proc

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExitSeenWhileGrandchildHoldsOutput: a child that dies while a
// process it started still holds its output (Patroni SIGKILLed, its
// Postgres alive) is seen to exit, and, supervised, is started again;
// before, supervision waited for the pipe to close, so for as long as the
// grandchild lived.
func TestExitSeenWhileGrandchildHoldsOutput(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild")
	p, err := Start(Spec{
		Name: "parent",
		Command: func() *exec.Cmd {
			return exec.Command("sh", "-c", "sleep 1000 & echo $! > "+pidFile+"; exec sleep 1000")
		},
		LogPath: filepath.Join(dir, "log"),
		Restart: true,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Stop()
		killPIDFile(pidFile)
	}()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second) // a hang, not a speed: the grandchild sleeps 1000 s
	for p.Restarts() == 0 {
		select {
		case <-deadline:
			t.Fatal("the parent's death went unseen while its child held the output pipe")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func killPIDFile(path string) {
	data, _ := os.ReadFile(path)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
