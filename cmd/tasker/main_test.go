package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/migrate"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/template"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// runTasker runs the command line in-process and returns its output.
func runTasker(ctx context.Context, t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	latest := latestMigration(t)

	out, err := runTasker(t.Context(), t, "migrate", "--database-url", db.URL)
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("schema at version %d (%d migration(s) applied)", latest, latest))

	out, err = runTasker(t.Context(), t, "migrate", "--database-url", db.URL)
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("schema at version %d (0 migration(s) applied)", latest))

	out, err = runTasker(t.Context(), t, "migrate", "--database-url", db.URL, "--down", "--to", "0")
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("schema at version 0 (%d migration(s) reverted)", latest))

	_, err = runTasker(t.Context(), t, "migrate", "--database-url", db.URL, "--down")
	require.ErrorContains(t, err, "--down needs --to")
}

func TestCommandsNeedADatabaseURL(t *testing.T) {
	t.Setenv("TASKER_DATABASE_URL", "")
	for _, command := range []string{"migrate", "orchestrator"} {
		_, err := runTasker(t.Context(), t, command)
		require.ErrorContains(t, err, "--database-url (or TASKER_DATABASE_URL) is required", command)
	}
}

func TestDatabaseURLFromEnvironment(t *testing.T) {
	db := pgtest.NewEmptyDatabase(t)
	t.Setenv("TASKER_DATABASE_URL", db.URL)
	out, err := runTasker(t.Context(), t, "migrate")
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("schema at version %d", latestMigration(t)))
}

// latestMigration is the version of the last migration in the binary.
func latestMigration(t *testing.T) int {
	t.Helper()
	m, err := migrate.New()
	require.NoError(t, err)
	return m.Latest()
}

func TestManagerNeedsAWorkerImage(t *testing.T) {
	t.Setenv("TASKER_WORKER_IMAGE", "")
	_, err := runTasker(t.Context(), t, "manager", "--database-url", "postgres://x")
	require.ErrorContains(t, err, "--worker-image (or TASKER_WORKER_IMAGE) is required")
}

func TestBadLogFlags(t *testing.T) {
	t.Parallel()
	_, err := runTasker(t.Context(), t, "migrate", "--database-url", "postgres://x", "--log-level", "loud")
	require.ErrorContains(t, err, `--log-level: "loud" is not one of`)
	_, err = runTasker(t.Context(), t, "migrate", "--database-url", "postgres://x", "--log-format", "xml")
	require.ErrorContains(t, err, `--log-format: "xml" is not one of`)
}

// TestOrchestratorCommand starts `tasker orchestrator` on an empty
// database: it migrates, then settles a step outcome recorded by a worker,
// and stops cleanly when its context ends (as on SIGTERM).
func TestOrchestratorCommand(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := runTasker(ctx, t, "orchestrator", "--database-url", db.URL, "--listen", "127.0.0.1:0", "--poll-interval", "50ms", "--log-level", "warn")
		done <- err
	}()

	def := template.Definition{
		NamespaceName: "cli_test", Name: "one_step", Version: "1.0.0",
		Steps: []template.Step{{Name: "only", Handler: template.Handler{Callable: "cli_test.Only"}}},
	}
	engine := orchestration.NewEngine(db.Pool, orchestration.Config{ProcessID: "test"})
	require.Eventually(t, func() bool {
		_, err := engine.Templates().Register(ctx, def, "test")
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "the orchestrator migrates the database at start")
	task, err := engine.CreateTask(ctx, orchestration.CreateTaskRequest{Namespace: "cli_test", Name: "one_step"})
	require.NoError(t, err)

	runOneStep(ctx, t, db, "cli_test")
	require.Eventually(t, func() bool {
		got, err := engine.GetTask(ctx, task.UUID)
		return err == nil && got.State == orchestration.TaskComplete
	}, 30*time.Second, 20*time.Millisecond, "the orchestrator completes the task")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the orchestrator did not stop")
	}
}

// runOneStep plays a worker for one step message of the namespace.
func runOneStep(ctx context.Context, t *testing.T, db *pgtest.Database, namespace string) {
	t.Helper()
	executor, err := dispatch.NewExecutor(db.Pool, dispatch.ExecutorConfig{WorkerID: "test-worker"})
	require.NoError(t, err)
	msgs, err := queue.New().Read(ctx, db.Pool, dispatch.StepQueue(namespace), 30*time.Second, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	claim, err := executor.Claim(ctx, dispatch.StepQueue(namespace), msgs[0])
	require.NoError(t, err)
	require.NoError(t, executor.Record(ctx, claim, dispatch.Outcome{Result: json.RawMessage(`{"ok": true}`)}))
}

func TestHelpDescribesEveryCommand(t *testing.T) {
	t.Parallel()
	out, err := runTasker(t.Context(), t, "--help")
	require.NoError(t, err)
	for _, command := range []string{"migrate", "orchestrator", "worker", "manager", "task", "template"} {
		require.Contains(t, out, command, "help mentions %s", command)
	}
	out, err = runTasker(t.Context(), t, "orchestrator", "--help")
	require.NoError(t, err)
	for _, flag := range []string{"--database-url", "TASKER_DATABASE_URL", "--poll-interval", "--sweep-interval", "--lease-grace", "--log-level"} {
		require.Contains(t, out, flag)
	}
}
