// Package e2e tests the whole system as it runs in production: a real
// PostgreSQL, the tasker binary built from this module, `tasker migrate`,
// `tasker template apply`, two orchestrators serving the REST API and two
// workers running the example handlers, all as separate processes. Tests
// talk to it only through the REST API, the probes, and read-only queries
// of the database.
//
// Run it against a throwaway server shared with the other packages:
//
//	go run ./internal/pgtest/pgrun -- go test ./test/e2e/... -count=1 -v
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/test/e2e/harness"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// suite is the shared system most tests run against, and what they need to
// look at it.
type suite struct {
	// sys runs two orchestrators (API with a bearer token) and two workers
	// serving the five sample namespaces.
	sys *harness.System
	// db is the system's database, for read-only checks.
	db *pgtest.Database
}

// TestE2E builds the binary once, then runs the shared-system tests and
// the worker-failure tests (which need a system of their own) side by side.
func TestE2E(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	bin, err := harness.Build(ctx, t.TempDir())
	require.NoError(t, err)

	t.Run("shared_system", func(t *testing.T) {
		t.Parallel()
		s := setup(t, bin)
		t.Run("workflows", func(t *testing.T) {
			t.Run("math", func(t *testing.T) { t.Parallel(); testMathWorkflows(t, s) })
			t.Run("order_fulfillment", func(t *testing.T) { t.Parallel(); testOrderFulfillment(t, s) })
			t.Run("order_failures", func(t *testing.T) { t.Parallel(); testOrderFailures(t, s) })
			t.Run("bad_input", func(t *testing.T) { t.Parallel(); testBadInput(t, s) })
			t.Run("authentication", func(t *testing.T) { t.Parallel(); testAuthentication(t, s) })
			t.Run("200_mixed_tasks_at_once", func(t *testing.T) { t.Parallel(); testManyTasks(t, s) })
		})
		t.Run("probes_and_metrics", func(t *testing.T) { testProbes(t, s) })
		t.Run("sigterm_exits_zero", func(t *testing.T) {
			require.NoError(t, s.sys.Stop(), "every process must exit 0 on SIGTERM")
		})
	})
	t.Run("worker_failures", func(t *testing.T) {
		t.Parallel()
		testWorkerFailures(t, bin)
	})
}

// setup starts the shared system on a fresh database: migrate, register
// the five samples, then two orchestrators and two workers. Everything is
// killed when t ends, whatever happened.
func setup(t *testing.T, bin string) *suite {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	db := pgtest.NewEmptyDatabase(t)
	require.NoError(t, harness.Migrate(ctx, bin, db.URL))
	require.NoError(t, harness.ApplySamples(ctx, bin, db.URL))
	sys, err := harness.Start(ctx, harness.Options{
		Binary: bin, DatabaseURL: db.URL, Dir: t.TempDir(),
		Orchestrators: 2, Workers: 2, Token: randomToken(t), IDPrefix: "shared-",
	})
	require.NoError(t, err)
	cleanupSystem(t, sys)
	return &suite{sys: sys, db: db}
}

// cleanupSystem kills the system's processes when t ends and, when t
// failed, logs the end of each one's log (the log directory is removed).
func cleanupSystem(t *testing.T, sys *harness.System) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range sys.Processes() {
				t.Logf("%s (%s):\n%s", p.Name, p.ID, p.Tail(30))
			}
		}
		if err := sys.Kill(); err != nil {
			t.Errorf("killing the system: %v", err)
		}
	})
}

// randomToken returns a fresh API token.
func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
