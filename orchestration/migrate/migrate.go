// Package migrate applies tasker's schema migrations. The migrations are
// embedded in the binary, numbered, each with an up and a down file, and
// checked for completeness when loaded. Up and Down run under a PostgreSQL
// advisory lock so that several processes (orchestrator replicas starting at
// once, `tasker migrate` jobs) never apply the same migration twice.
package migrate

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var embedded embed.FS

// advisoryLockKey identifies the migration lock: the first 8 bytes of
// sha256("tasker.migrate"), fixed so that every tasker version agrees.
const advisoryLockKey int64 = 0x2b1c7e5d3a9f4e01

// Bookkeeping statements. The migration table lives in schema tasker, which
// the migrator owns; migration 1's down leaves the schema and this table.
const (
	sqlBootstrap = `CREATE SCHEMA IF NOT EXISTS tasker;
CREATE TABLE IF NOT EXISTS tasker.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`
	sqlCurrentVersion   = `SELECT coalesce(max(version), 0) FROM tasker.schema_migrations`
	sqlRecordApplied    = `INSERT INTO tasker.schema_migrations (version, name) VALUES ($1, $2)`
	sqlRecordReverted   = `DELETE FROM tasker.schema_migrations WHERE version = $1`
	sqlExtensionOffered = `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)`
)

// Direction says whether a migration was applied or reverted.
type Direction string

// The two directions.
const (
	DirectionUp   Direction = "up"
	DirectionDown Direction = "down"
)

// Applied reports one migration that Up or Down ran.
type Applied struct {
	Version   int
	Name      string
	Direction Direction
	// Note says how it ran when that is not obvious, e.g. that an extension
	// replaced the bundled SQL.
	Note     string
	Duration time.Duration
}

// Migrator applies a fixed, validated set of migrations.
type Migrator struct {
	migrations  []Migration
	fingerprint string
}

// New returns a Migrator over the migrations embedded in the binary.
func New() (*Migrator, error) {
	return NewFromFS(embedded, "migrations")
}

// NewFromFS returns a Migrator over the migration files in dir of fsys. It
// fails when the set has gaps, duplicates, a missing up or down file, or a
// file whose name does not follow NNNN_name.(up|down).sql.
func NewFromFS(fsys fs.FS, dir string) (*Migrator, error) {
	migrations, err := load(fsys, dir)
	if err != nil {
		return nil, err
	}
	return &Migrator{migrations: migrations, fingerprint: fingerprint(migrations)}, nil
}

// Migrations returns the migrations in version order.
func (m *Migrator) Migrations() []Migration { return append([]Migration(nil), m.migrations...) }

// Latest is the highest migration version.
func (m *Migrator) Latest() int { return m.migrations[len(m.migrations)-1].Version }

// Fingerprint is a hex sha256 over all migration files.
func (m *Migrator) Fingerprint() string { return m.fingerprint }

// Current returns the version the database is at (0 when none applied).
func (m *Migrator) Current(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var version int
	err := m.withLock(ctx, pool, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, sqlCurrentVersion).Scan(&version)
	})
	return version, err
}

// Up applies every migration above the database's current version, each in
// its own transaction, and returns what it applied (nothing when current).
func (m *Migrator) Up(ctx context.Context, pool *pgxpool.Pool) ([]Applied, error) {
	var applied []Applied
	err := m.withLock(ctx, pool, func(conn *pgx.Conn) error {
		current, err := currentVersion(ctx, conn)
		if err != nil {
			return err
		}
		if current > m.Latest() {
			return fmt.Errorf("database schema is at version %d, newer than this binary's latest migration %d", current, m.Latest())
		}
		for _, mig := range m.migrations[current:] {
			step, err := runUp(ctx, conn, mig)
			if err != nil {
				return err
			}
			applied = append(applied, step)
		}
		return nil
	})
	return applied, err
}

// Down reverts applied migrations above target, newest first, each in its
// own transaction. Down(ctx, pool, 0) removes everything but the migrator's
// own bookkeeping table.
func (m *Migrator) Down(ctx context.Context, pool *pgxpool.Pool, target int) ([]Applied, error) {
	if target < 0 || target > m.Latest() {
		return nil, fmt.Errorf("target version %d is outside 0..%d", target, m.Latest())
	}
	var reverted []Applied
	err := m.withLock(ctx, pool, func(conn *pgx.Conn) error {
		current, err := currentVersion(ctx, conn)
		if err != nil {
			return err
		}
		for v := min(current, m.Latest()); v > target; v-- {
			step, err := runDown(ctx, conn, m.migrations[v-1])
			if err != nil {
				return err
			}
			reverted = append(reverted, step)
		}
		return nil
	})
	return reverted, err
}

// withLock runs fn on one connection holding the migration advisory lock,
// after making sure the bookkeeping table exists. The unlock runs even when
// ctx was cancelled.
func (m *Migrator) withLock(ctx context.Context, pool *pgxpool.Pool, fn func(*pgx.Conn) error) (err error) {
	pconn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquiring connection: %w", err)
	}
	defer pconn.Release()
	conn := pconn.Conn()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", advisoryLockKey); err != nil {
		return fmt.Errorf("migrate: taking advisory lock: %w", err)
	}
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(unlockCtx, "SELECT pg_advisory_unlock($1)", advisoryLockKey); uerr != nil {
			err = errors.Join(err, fmt.Errorf("migrate: releasing advisory lock: %w", uerr))
		}
	}()
	if _, err := conn.Exec(ctx, sqlBootstrap); err != nil {
		return fmt.Errorf("migrate: creating schema_migrations: %w", err)
	}
	return fn(conn)
}

func currentVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	var version int
	if err := conn.QueryRow(ctx, sqlCurrentVersion).Scan(&version); err != nil {
		return 0, fmt.Errorf("migrate: reading current version: %w", err)
	}
	return version, nil
}

// runUp applies one migration and records it, in one transaction.
func runUp(ctx context.Context, conn *pgx.Conn, mig Migration) (Applied, error) {
	start := time.Now()
	step := Applied{Version: mig.Version, Name: mig.Name, Direction: DirectionUp}
	sql := mig.Up
	if mig.PreferExtension != "" {
		var offered bool
		if err := conn.QueryRow(ctx, sqlExtensionOffered, mig.PreferExtension).Scan(&offered); err != nil {
			return step, fmt.Errorf("migrate: checking for extension %s: %w", mig.PreferExtension, err)
		}
		if offered {
			sql = "CREATE EXTENSION IF NOT EXISTS " + pgx.Identifier{mig.PreferExtension}.Sanitize()
			step.Note = "using the server's " + mig.PreferExtension + " extension"
		} else {
			step.Note = "server has no " + mig.PreferExtension + " extension; installed the bundled compatible SQL"
		}
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlRecordApplied, mig.Version, mig.Name)
		return err
	})
	if err != nil {
		return step, fmt.Errorf("migrate: applying %04d_%s: %w", mig.Version, mig.Name, err)
	}
	step.Duration = time.Since(start)
	return step, nil
}

// runDown reverts one migration and forgets it, in one transaction.
func runDown(ctx context.Context, conn *pgx.Conn, mig Migration) (Applied, error) {
	start := time.Now()
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, mig.Down); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlRecordReverted, mig.Version)
		return err
	})
	if err != nil {
		return Applied{}, fmt.Errorf("migrate: reverting %04d_%s: %w", mig.Version, mig.Name, err)
	}
	return Applied{Version: mig.Version, Name: mig.Name, Direction: DirectionDown, Duration: time.Since(start)}, nil
}
