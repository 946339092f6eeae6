package orchestration

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/template"
	"github.com/taskerops/tasker/orchestration/wakeup"
)

// runWorker runs w until ctx ends, woken by NOTIFY on its queues and
// polling every 50ms as the fallback. Errors are kept in w.loopErrors and
// the loop goes on, as a real worker's would.
func runWorker(ctx context.Context, t *testing.T, url string, w *testWorker) {
	t.Helper()
	wake := newSignal()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	channels := make([]string, len(w.namespaces))
	for i, ns := range w.namespaces {
		channels[i] = queue.Channel(dispatch.StepQueue(ns))
	}
	listener, err := wakeup.New(wakeup.Config{ConnConfig: cfg.ConnConfig, Channels: channels, OnNotify: func(string, string) { wake.fire() }})
	require.NoError(t, err)
	go func() { _ = listener.Run(ctx) }()
	for ctx.Err() == nil {
		n, err := w.runOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.mu.Lock()
			w.loopErrors = append(w.loopErrors, err.Error())
			w.mu.Unlock()
		}
		if n > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-wake.C():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// newPool opens a pool of the test's own on the test database, like a
// separate process would.
func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		time.Sleep(20 * time.Millisecond)
	}
}

func countTasks(t *testing.T, b *bundle, state TaskState) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT count(*) FROM tasker.tasks WHERE state = $1`, string(state)).Scan(&n))
	return n
}

func TestTwoOrchestratorsRaceOver500Tasks(t *testing.T) {
	t.Parallel()
	const tasks = 500
	def := diamondWorkflow()
	_, b := setup(t, def)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	for i := 1; i <= 2; i++ {
		engine := newTestEngine(t, newPool(t, b.db.URL), fmt.Sprintf("orchestrator-%d", i))
		wg.Go(func() { _ = engine.Run(ctx) })
	}
	workers := make([]*testWorker, 3)
	for i := range workers {
		workers[i] = newTestWorker(t, newPool(t, b.db.URL), fmt.Sprintf("worker-%d", i), []template.Definition{def})
		wg.Go(func() { runWorker(ctx, t, b.db.URL, workers[i]) })
	}

	creator := newTestEngine(t, b.pool, "creator")
	start := time.Now()
	var created sync.WaitGroup
	for g := range 4 {
		created.Go(func() {
			for i := g; i < tasks; i += 4 {
				_, err := creator.CreateTask(ctx, CreateTaskRequest{
					Namespace: def.NamespaceName, Name: def.Name,
					Context: fmt.Appendf(nil, `{"even_number": %d}`, 2*(i+1)),
				})
				if err != nil {
					t.Errorf("creating task %d: %v", i, err)
				}
			}
		})
	}
	created.Wait()
	waitFor(t, 3*time.Minute, "all tasks to complete", func() bool { return countTasks(t, b, TaskComplete) == tasks })
	t.Logf("%d diamond tasks (%d steps) completed in %s with 2 orchestrators and 3 workers", tasks, 4*tasks, time.Since(start))
	cancel()
	wg.Wait()

	for _, w := range workers {
		require.Empty(t, w.orderViolations())
		require.Empty(t, w.loopErrors)
	}
	requireEachStepCompletedOnce(t, b, 4*tasks)
	requireDiamondValues(t, b, tasks)
}

// requireEachStepCompletedOnce checks the history: every step reached
// complete exactly once, ran exactly once, and its outcome was handed to
// the orchestrator exactly once.
func requireEachStepCompletedOnce(t *testing.T, b *bundle, steps int) {
	t.Helper()
	var stepRows, completions, handoffs, maxAttempts int
	require.NoError(t, b.pool.QueryRow(t.Context(), `
		SELECT (SELECT count(*) FROM tasker.workflow_steps WHERE state = 'complete'),
		       (SELECT count(*) FROM tasker.step_transitions WHERE to_state = 'complete'),
		       (SELECT count(*) FROM tasker.step_transitions WHERE to_state = 'enqueued_for_orchestration'),
		       (SELECT max(attempts) FROM tasker.workflow_steps)`).Scan(&stepRows, &completions, &handoffs, &maxAttempts))
	require.Equal(t, steps, stepRows)
	require.Equal(t, steps, completions, "transitions to complete")
	require.Equal(t, steps, handoffs, "outcomes recorded")
	require.Equal(t, 1, maxAttempts)
}

// requireDiamondValues checks diamond_end = N^16 for every task, in SQL
// with exact numeric arithmetic.
func requireDiamondValues(t *testing.T, b *bundle, tasks int) {
	t.Helper()
	var wrong int
	require.NoError(t, b.pool.QueryRow(t.Context(), `
		SELECT count(*) FROM tasker.workflow_steps s JOIN tasker.tasks k USING (task_uuid)
		WHERE s.name = 'diamond_end'
		  AND (s.results->>'value')::numeric <> power((k.context->>'even_number')::numeric, 16)`).Scan(&wrong))
	require.Zero(t, wrong, "tasks with a wrong diamond_end value")
}

func TestLoopsSurviveLostConnections(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	_, b := setup(t, def)
	var logs syncBuffer
	engine := NewEngine(newPool(t, b.db.URL), Config{
		ProcessID: "orchestrator-1", PollInterval: 20 * time.Millisecond, SweepInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = engine.Run(ctx) })
	worker := newTestWorker(t, newPool(t, b.db.URL), "worker-1", []template.Definition{def})
	wg.Go(func() { runWorker(ctx, t, b.db.URL, worker) })

	runOne := func(n int) {
		task, err := newTestEngine(t, newPool(t, b.db.URL), "creator").CreateTask(t.Context(), CreateTaskRequest{
			Namespace: def.NamespaceName, Name: def.Name, Context: fmt.Appendf(nil, `{"even_number": %d}`, n),
		})
		require.NoError(t, err)
		waitFor(t, time.Minute, "task to complete", func() bool {
			got, err := engine.GetTask(t.Context(), task.UUID)
			return err == nil && got.State == TaskComplete
		})
	}
	runOne(2)

	// Kill every other connection to the database: the engine's pool, its
	// LISTEN connection and the worker's.
	var killed int
	require.NoError(t, b.pool.QueryRow(t.Context(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&killed))
	require.Positive(t, killed)

	runOne(4)
	require.Contains(t, logs.String(), "notification listener lost its connection; reconnecting")
	require.Empty(t, worker.orderViolations())
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Clone(s.buf.String())
}
