// Command hostinit is a throwaway test host's init and, installed under
// that name, its systemctl (package hostinit); package testhost installs
// it as both.
//
//	hostinit                  the host's init: starts the enabled units and
//	                          serves systemctl until SIGTERM, then stops them
//	systemctl VERB [UNIT...]  asks the host's init, as Ansible's systemd
//	                          module and the roles' handlers do
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"shortfleet/provisioning/hostinit"
)

func main() {
	// Ansible runs whatever systemctl the host's PATH finds, with
	// systemctl's arguments: the name is the only way to tell.
	if filepath.Base(os.Args[0]) == "systemctl" {
		os.Exit(hostinit.Systemctl(os.Args[1:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: hostinit (a test host's init; installed as systemctl, its systemctl)")
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("app", "hostinit")
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if err := hostinit.Run(ctx, logger); err != nil {
		logger.Error("init failed", "err", err)
		os.Exit(1)
	}
}
