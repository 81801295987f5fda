// Package subcmd holds the primary's subcommands: `primary [flags] NAME
// ARG` does one job against the database and exits instead of serving.
// Each needs the database address alone, not the code key or any other
// setting, so whoever can reach the database can run them; that is how
// the first admin is made.
package subcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"shortfleet/primary/internal/store"
	sfsql "shortfleet/sql"
)

// exitUsage is the exit status of a subcommand given wrong arguments, as
// the flag package exits for wrong flags.
const exitUsage = 2

// Command is one subcommand.
type Command struct {
	// Name is the word after the flags that selects it.
	Name string
	// Args is what it takes, for its usage line.
	Args string
	run  func(dsn, arg string, stdout io.Writer, logger *slog.Logger) int
}

// Commands are the primary's subcommands, the one list both the dispatch
// and the usage lines read.
var Commands = []Command{
	{Name: "migrate", Args: "up|down|version", run: migrate},
	{Name: "grant-admin", Args: "EMAIL", run: grantAdmin},
}

// Lookup returns the subcommand called name. Any other word, or none,
// is no subcommand: the primary serves.
func Lookup(name string) (Command, bool) {
	for _, c := range Commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// Run runs c against the database at dsn with args, the words after its
// name (only the first is read), and returns the exit status: 0 done, 1
// failed (logged), 2 wrong arguments (a usage line on stderr).
func (c Command) Run(dsn string, args []string, stdout, stderr io.Writer, logger *slog.Logger) int {
	arg := ""
	if len(args) > 0 {
		arg = args[0]
	}
	code := c.run(dsn, arg, stdout, logger)
	if code == exitUsage {
		fmt.Fprintf(stderr, "usage: primary [flags] %s %s\n", c.Name, c.Args)
	}
	return code
}

func migrate(dsn, verb string, stdout io.Writer, logger *slog.Logger) int {
	var err error
	switch verb {
	case "up":
		err = sfsql.MigrateUp(dsn, logger)
	case "down":
		err = sfsql.MigrateDown(dsn, logger)
	case "version":
		var v uint
		var dirty bool
		v, dirty, err = sfsql.MigrationVersion(dsn)
		if err == nil {
			fmt.Fprintf(stdout, "version %d dirty %v\n", v, dirty)
		}
	default:
		return exitUsage
	}
	if err != nil {
		logger.Error("migrate "+verb, "err", err)
		return 1
	}
	return 0
}

// grantAdmin makes the account with email an admin.
func grantAdmin(dsn, email string, _ io.Writer, logger *slog.Logger) int {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return exitUsage
	}
	ctx := context.Background()
	pool, err := sfsql.OpenPool(ctx, dsn)
	if err != nil {
		logger.Error("database address", "err", err)
		return 1
	}
	defer pool.Close()
	st := store.New(pool, nil, logger) // SetAdmin encodes no link code: no codec
	defer st.Close()
	switch err := st.SetAdmin(ctx, email, true); {
	case errors.Is(err, sfsql.ErrNotFound):
		logger.Error("grant-admin: no account has this email; sign up first", "email", email)
		return 1
	case err != nil:
		logger.Error("grant-admin", "email", email, "err", err)
		return 1
	}
	logger.Info("admin granted", "email", email)
	return 0
}
