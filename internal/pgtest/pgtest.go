// Package pgtest gives every test its own PostgreSQL database, so tests that
// touch the database can run with t.Parallel().
//
// The server is chosen once per test process, on first use: the one that
// TASKER_TEST_DATABASE_URL points to (the test-run wrapper
// internal/pgtest/pgrun sets it, so that all packages of one `go test ./...`
// share one server), or else a throwaway pgcluster that this process starts.
// Use Main from TestMain so that such a cluster is stopped when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Without Main the cluster still dies with the test process (parent-death
// signal) and its directory is removed by the next cluster start, but Main is
// cleaner and faster.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/internal/pgxcodec"
)

// DatabaseURLEnv names the environment variable holding the connection URL
// of an existing server to create test databases on, as a role allowed to
// create databases. When it is unset, the test process starts its own
// cluster.
const DatabaseURLEnv = "TASKER_TEST_DATABASE_URL"

// databaseNamePrefix starts the name of every test database.
const databaseNamePrefix = "tasker_test_"

// adminTimeout bounds each administrative step: creating, migrating or
// dropping a database.
const adminTimeout = 2 * time.Minute

// Database is a database of its own for one test.
type Database struct {
	// Name is the database's name, tasker_test_<random hex>.
	Name string
	// URL is the connection URL of the database.
	URL string
	// Pool is a connection pool on the database, closed when the test ends.
	Pool *pgxpool.Pool
}

// Main runs the package's tests, then stops the cluster this process started
// (if it started one) and exits with the tests' exit code. Call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// NewDatabase creates a fresh database for the test, migrated to the latest
// tasker schema, and drops it when the test ends. Safe for t.Parallel().
func NewDatabase(tb testing.TB) *Database {
	tb.Helper()
	return newDatabase(tb, true)
}

// NewEmptyDatabase creates a fresh database without tasker's schema (for
// migration tests) and drops it when the test ends. Safe for t.Parallel().
func NewEmptyDatabase(tb testing.TB) *Database {
	tb.Helper()
	return newDatabase(tb, false)
}

// newDatabase creates the test's database, from the migrated template when
// migrated is true, and registers its removal.
func newDatabase(tb testing.TB, migrated bool) *Database {
	tb.Helper()
	srv, err := sharedServer()
	if err != nil {
		tb.Fatalf("pgtest: no PostgreSQL server (set %s or run hack/install-postgres.sh): %v", DatabaseURLEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	template := ""
	if migrated {
		if template, err = srv.migratedTemplate(ctx); err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
	}
	db, err := srv.createDatabase(ctx, template)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if err := srv.dropDatabase(ctx, db); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return db
}

// createDatabase creates a database with a random name, as a copy of
// template when it is not empty, and opens a pool on it.
func (s *server) createDatabase(ctx context.Context, template string) (*Database, error) {
	name := randomName(databaseNamePrefix)
	sql := "CREATE DATABASE " + quote(name)
	if template != "" {
		sql += " TEMPLATE " + quote(template)
	}
	if s.fileCopy {
		sql += " STRATEGY FILE_COPY"
	}
	if _, err := s.admin.Exec(ctx, sql); err != nil {
		return nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	db := &Database{Name: name, URL: databaseURL(s.adminURL, name)}
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opening pool on %s: %w", name, err), s.dropDatabase(ctx, db))
	}
	// As in the tasker command, so that tests exercise pgxcodec's codec.
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgxcodec.Register(conn.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opening pool on %s: %w", name, err), s.dropDatabase(ctx, db))
	}
	db.Pool = pool
	return db, nil
}

// dropDatabase closes the database's pool and drops it, ending any
// connection still open on it.
func (s *server) dropDatabase(ctx context.Context, db *Database) error {
	if db.Pool != nil {
		db.Pool.Close()
	}
	if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+quote(db.Name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", db.Name, err)
	}
	return nil
}

// randomName returns prefix followed by 16 random hex digits.
func randomName(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return prefix + hex.EncodeToString(b)
}

// quote quotes a database name as an SQL identifier.
func quote(name string) string {
	return pgx.Identifier{name}.Sanitize()
}
