package sql

import (
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers pgx5://
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

//go:embed migrations/*.sql
var migrations embed.FS

// newMigrate opens a migrator for the database at dsn, a postgres:// URL.
func newMigrate(dsn string) (*migrate.Migrate, error) {
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	url, err := migrateURL(dsn)
	if err != nil {
		return nil, err
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, url)
	if err != nil {
		return nil, fmt.Errorf("open migrator: %w", err)
	}
	return m, nil
}

// migrateURL turns a postgres:// URL into the pgx5:// one golang-migrate's
// pgx driver registers.
func migrateURL(dsn string) (string, error) {
	for _, p := range []string{"postgres://", "postgresql://"} {
		if strings.HasPrefix(dsn, p) {
			return "pgx5://" + strings.TrimPrefix(dsn, p), nil
		}
	}
	return "", fmt.Errorf("database address must be a postgres:// URL")
}

func closeMigrate(m *migrate.Migrate, err error) error {
	srcErr, dbErr := m.Close()
	return errors.Join(err, srcErr, dbErr)
}

// MigrateUp applies every migration not yet applied. Several processes may
// call it at once: golang-migrate serialises them with an advisory lock.
func MigrateUp(dsn string, logger *slog.Logger) (err error) {
	m, err := newMigrate(dsn)
	if err != nil {
		return err
	}
	defer func() { err = closeMigrate(m, err) }()
	before, _, _ := m.Version()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("apply migrations: %w", err)
	}
	after, dirty, _ := m.Version()
	logger.Info("schema migrated", "from", before, "to", after, "dirty", dirty)
	return nil
}

// MigrateTo applies or reverts migrations until the schema is at
// version: a benchmark gives an older build the schema it was built for.
func MigrateTo(dsn string, version uint) (err error) {
	m, err := newMigrate(dsn)
	if err != nil {
		return err
	}
	defer func() { err = closeMigrate(m, err) }()
	if err := m.Migrate(version); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// MigrateDown reverts every applied migration, leaving an empty schema.
func MigrateDown(dsn string, logger *slog.Logger) (err error) {
	m, err := newMigrate(dsn)
	if err != nil {
		return err
	}
	defer func() { err = closeMigrate(m, err) }()
	if err := m.Down(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("revert migrations: %w", err)
	}
	logger.Info("schema reverted")
	return nil
}

// MigrationVersion reports the schema version applied to the database, 0
// when none is, and whether a migration failed half-way (dirty).
func MigrationVersion(dsn string) (version uint, dirty bool, err error) {
	m, err := newMigrate(dsn)
	if err != nil {
		return 0, false, err
	}
	defer func() { err = closeMigrate(m, err) }()
	version, dirty, err = m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	return version, dirty, err
}

// LatestMigration is the version the embedded migrations bring a database to.
func LatestMigration() (uint, error) {
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		return 0, err
	}
	var latest uint
	for _, e := range entries {
		var v uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > latest {
			latest = v
		}
	}
	return latest, nil
}
