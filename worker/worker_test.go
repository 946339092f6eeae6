package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/template"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is a database with an orchestrator running, and a way to start
// workers on it.
type fixture struct {
	db     *pgtest.Database
	engine *orchestration.Engine
}

// setup registers def and runs an orchestrator until the test ends.
func setup(t *testing.T, defs ...template.Definition) *fixture {
	t.Helper()
	db := pgtest.NewDatabase(t)
	engine := orchestration.NewEngine(newPool(t, db.URL), orchestration.Config{
		ProcessID: "orchestrator", PollInterval: 50 * time.Millisecond, SweepInterval: 50 * time.Millisecond,
	})
	for _, def := range defs {
		_, err := engine.Templates().Register(t.Context(), def, "test")
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = engine.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &fixture{db: db, engine: engine}
}

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// startWorker runs a worker over the namespaces with the registry; the
// returned function stops it (like SIGTERM) and waits for Run to return.
func (f *fixture) startWorker(t *testing.T, registry *Registry, cfg Config) func() {
	t.Helper()
	cfg.Registry = registry
	if cfg.WorkerID == "" {
		cfg.WorkerID = "worker-" + uuid.NewString()[:8]
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	w, err := New(newPool(t, f.db.URL), cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

func (f *fixture) waitForState(t *testing.T, taskUUID uuid.UUID, states ...orchestration.TaskState) *orchestration.Task {
	t.Helper()
	var task *orchestration.Task
	require.Eventually(t, func() bool {
		var err error
		task, err = f.engine.GetTask(t.Context(), taskUUID)
		require.NoError(t, err)
		return slices.Contains(states, task.State)
	}, 30*time.Second, 10*time.Millisecond, "task never reached %v", states)
	return task
}

// twoSteps is a template "first → second" in namespace ns.
func twoSteps(ns string, timeoutSeconds, maxAttempts int) template.Definition {
	zero := 0
	retry := &template.RetryPolicy{MaxAttempts: maxAttempts, BackoffBaseMs: 10, JitterPercent: &zero}
	return template.Definition{
		NamespaceName: ns, Name: "two_steps", Version: "1.0.0", IdentityStrategy: template.IdentityAlwaysUnique,
		Steps: []template.Step{
			{Name: "first", Handler: template.Handler{Callable: ns + ".First"}, Retry: retry, TimeoutSeconds: timeoutSeconds},
			{Name: "second", Handler: template.Handler{Callable: ns + ".Second"}, DependsOn: []string{"first"}, Retry: retry, TimeoutSeconds: timeoutSeconds},
		},
	}
}

func (f *fixture) create(t *testing.T, def template.Definition) uuid.UUID {
	t.Helper()
	task, err := f.engine.CreateTask(t.Context(), orchestration.CreateTaskRequest{Namespace: def.NamespaceName, Name: def.Name, Context: json.RawMessage(`{"n": 1}`)})
	require.NoError(t, err)
	return task.UUID
}

func TestWorkerRunsStepsWithTheirDependencies(t *testing.T) {
	t.Parallel()
	def := twoSteps("w_deps", 30, 3)
	f := setup(t, def)
	registry := NewRegistry()
	registry.MustRegister("w_deps.First", HandlerFunc(func(_ context.Context, s *TaskSequenceStep) (StepResult, error) {
		var in struct{ N int }
		if err := s.DecodeContext(&in); err != nil {
			return StepResult{}, err
		}
		return StepResult{Result: map[string]int{"value": in.N + 41}}, nil
	}))
	registry.MustRegister("w_deps.Second", HandlerFunc(func(_ context.Context, s *TaskSequenceStep) (StepResult, error) {
		var first struct{ Value int }
		if err := s.DependencyResult("first", &first); err != nil {
			return StepResult{}, err
		}
		return StepResult{Result: map[string]any{"value": first.Value * 2, "attempt": s.Step.Attempt, "task": s.Task.Name}}, nil
	}))
	stop := f.startWorker(t, registry, Config{WorkerID: "worker-deps", Namespaces: []string{"w_deps"}})

	var row struct {
		Namespaces, Callables []string
	}
	require.Eventually(t, func() bool {
		return f.db.Pool.QueryRow(t.Context(), `SELECT namespaces, callables FROM tasker.workers WHERE worker_id = 'worker-deps'`).Scan(&row.Namespaces, &row.Callables) == nil
	}, 10*time.Second, 10*time.Millisecond, "the worker registers itself")
	require.Equal(t, []string{"w_deps"}, row.Namespaces)
	require.Equal(t, []string{"w_deps.First", "w_deps.Second"}, row.Callables)

	task := f.waitForState(t, f.create(t, def), orchestration.TaskComplete)
	require.JSONEq(t, `{"value": 84, "attempt": 1, "task": "two_steps"}`, string(task.Step("second").Results))

	stop()
	var n int
	require.NoError(t, f.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM tasker.workers`).Scan(&n))
	require.Zero(t, n, "a clean shutdown removes the registration")
}

func TestWorkerRunsManyTasksAcrossNamespaces(t *testing.T) {
	t.Parallel()
	defs := []template.Definition{twoSteps("w_many_a", 30, 3), twoSteps("w_many_b", 30, 3)}
	f := setup(t, defs...)
	// Every other first step fails once, so that batches mix successes,
	// failures and retries.
	var mu sync.Mutex
	failed := map[uuid.UUID]bool{}
	registry := NewRegistry()
	for _, def := range defs {
		registry.MustRegister(def.NamespaceName+".First", HandlerFunc(func(_ context.Context, s *TaskSequenceStep) (StepResult, error) {
			mu.Lock()
			defer mu.Unlock()
			if s.Task.UUID[15]%2 == 0 && !failed[s.Task.UUID] {
				failed[s.Task.UUID] = true
				return StepResult{}, RetryableError("FLAKY", "once", 0)
			}
			return StepResult{Result: map[string]string{"task": s.Task.UUID.String()}}, nil
		}))
		registry.MustRegister(def.NamespaceName+".Second", HandlerFunc(func(_ context.Context, s *TaskSequenceStep) (StepResult, error) {
			var first struct{ Task string }
			if err := s.DependencyResult("first", &first); err != nil {
				return StepResult{}, err
			}
			return StepResult{Result: map[string]any{"task": first.Task, "namespace": s.Task.Namespace}}, nil
		}))
	}
	f.startWorker(t, registry, Config{Namespaces: []string{"w_many_a", "w_many_b"}, Concurrency: 16})

	const perNamespace = 40
	var tasks []uuid.UUID
	for range perNamespace {
		for _, def := range defs {
			tasks = append(tasks, f.create(t, def))
		}
	}
	for _, id := range tasks {
		task := f.waitForState(t, id, orchestration.TaskComplete)
		require.JSONEq(t, fmt.Sprintf(`{"task": %q, "namespace": %q}`, id, task.Namespace), string(task.Step("second").Results),
			"the second step saw its own task's first result")
		wantFirst := 1
		if id[15]%2 == 0 {
			wantFirst = 2
		}
		require.Equal(t, wantFirst, task.Step("first").Attempts)
		require.Equal(t, 1, task.Step("second").Attempts)
	}

	// Each attempt was claimed once and its outcome recorded once.
	rows, err := f.db.Pool.Query(t.Context(), `SELECT to_state, count(*) FROM tasker.step_transitions
WHERE to_state IN ('in_progress', 'enqueued_for_orchestration', 'enqueued_as_error_for_orchestration', 'complete')
GROUP BY to_state`)
	require.NoError(t, err)
	type count struct {
		State string
		N     int
	}
	counts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[count])
	require.NoError(t, err)
	retried := 0
	for _, id := range tasks {
		if id[15]%2 == 0 {
			retried++
		}
	}
	got := map[string]int{}
	for _, c := range counts {
		got[c.State] = c.N
	}
	steps := 2 * len(tasks)
	require.Equal(t, map[string]int{
		"in_progress":                         steps + retried,
		"enqueued_for_orchestration":          steps,
		"enqueued_as_error_for_orchestration": retried,
		"complete":                            steps,
	}, got)
	var left int
	require.NoError(t, f.db.Pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM pgmq.q_w_many_a_queue) + (SELECT count(*) FROM pgmq.q_w_many_b_queue)`).Scan(&left))
	require.Zero(t, left, "every step message was deleted")
}

func TestWorkerCancelsTheHandlersOfACancelledTask(t *testing.T) {
	t.Parallel()
	def := twoSteps("w_cancel", 60, 3)
	f := setup(t, def)
	started, cancelled := make(chan struct{}), make(chan error, 1)
	registry := NewRegistry()
	registry.MustRegister("w_cancel.First", HandlerFunc(func(ctx context.Context, _ *TaskSequenceStep) (StepResult, error) {
		close(started)
		<-ctx.Done()
		cancelled <- context.Cause(ctx)
		return StepResult{}, ctx.Err()
	}))
	f.startWorker(t, registry, Config{Namespaces: []string{"w_cancel"}})
	taskUUID := f.create(t, def)
	<-started
	_, err := f.engine.CancelTask(t.Context(), taskUUID, "test")
	require.NoError(t, err)
	select {
	case cause := <-cancelled:
		require.ErrorIs(t, cause, errTaskCancelled)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled")
	}
	task := f.waitForState(t, taskUUID, orchestration.TaskCancelled)
	require.Equal(t, orchestration.StepCancelled, task.Step("first").State)
	require.Nil(t, task.Step("first").Error, "no outcome is recorded for a cancelled step")
}

func TestWorkerTimesOutSteps(t *testing.T) {
	t.Parallel()
	def := twoSteps("w_timeout", 1, 1)
	f := setup(t, def)
	registry := NewRegistry()
	registry.MustRegister("w_timeout.First", HandlerFunc(func(ctx context.Context, _ *TaskSequenceStep) (StepResult, error) {
		<-ctx.Done()
		return StepResult{}, ctx.Err()
	}))
	f.startWorker(t, registry, Config{Namespaces: []string{"w_timeout"}})
	task := f.waitForState(t, f.create(t, def), orchestration.TaskBlockedByFailures)
	first := task.Step("first")
	require.Equal(t, "STEP_TIMEOUT", first.Error.Code)
	require.Equal(t, 1, first.Attempts)
}

func TestWorkerReportsAMissingHandler(t *testing.T) {
	t.Parallel()
	def := twoSteps("w_missing", 30, 3)
	f := setup(t, def)
	f.startWorker(t, NewRegistry(), Config{Namespaces: []string{"w_missing"}})
	task := f.waitForState(t, f.create(t, def), orchestration.TaskBlockedByFailures)
	first := task.Step("first")
	require.Equal(t, "HANDLER_NOT_FOUND", first.Error.Code)
	require.Contains(t, first.Error.Message, `"w_missing.First"`)
	require.False(t, first.Error.Retryable)
	require.Equal(t, 1, first.Attempts, "a missing handler is never retried")
}

func TestWorkerShutdownFinishesOrHandsBackSteps(t *testing.T) {
	t.Parallel()

	t.Run("AStepThatFinishesWithinTheGraceIsRecorded", func(t *testing.T) {
		t.Parallel()
		def := twoSteps("w_drain_ok", 30, 3)
		f := setup(t, def)
		started, release := make(chan struct{}), make(chan struct{})
		registry := NewRegistry()
		registry.MustRegister("w_drain_ok.First", HandlerFunc(func(context.Context, *TaskSequenceStep) (StepResult, error) {
			close(started)
			<-release
			return StepResult{Result: "done"}, nil
		}))
		stop := f.startWorker(t, registry, Config{Namespaces: []string{"w_drain_ok"}, ShutdownGrace: 10 * time.Second})
		taskUUID := f.create(t, def)
		<-started
		stopped := make(chan struct{})
		go func() {
			stop()
			close(stopped)
		}()
		time.Sleep(50 * time.Millisecond) // the worker is now draining
		close(release)
		<-stopped
		task, err := f.engine.GetTask(t.Context(), taskUUID)
		require.NoError(t, err)
		first := task.Step("first")
		require.Contains(t, []orchestration.StepState{orchestration.StepEnqueuedForOrchestration, orchestration.StepComplete}, first.State)
		require.JSONEq(t, `"done"`, string(first.Results))
	})

	t.Run("AStepStillRunningAfterTheGraceIsHandedBack", func(t *testing.T) {
		t.Parallel()
		def := twoSteps("w_drain_back", 60, 3)
		f := setup(t, def)
		started := make(chan struct{})
		registry := NewRegistry()
		registry.MustRegister("w_drain_back.First", HandlerFunc(func(ctx context.Context, _ *TaskSequenceStep) (StepResult, error) {
			close(started)
			<-ctx.Done()
			return StepResult{}, ctx.Err()
		}))
		metrics := prometheus.NewRegistry()
		stop := f.startWorker(t, registry, Config{Namespaces: []string{"w_drain_back"}, ShutdownGrace: 100 * time.Millisecond, Metrics: metrics})
		taskUUID := f.create(t, def)
		<-started
		require.InDelta(t, 1, gaugeValue(t, metrics, "tasker_steps_in_flight"), 0)
		stop()
		require.InDelta(t, 0, gaugeValue(t, metrics, "tasker_steps_in_flight"), 0, "a step handed back is no longer in flight")
		task, err := f.engine.GetTask(t.Context(), taskUUID)
		require.NoError(t, err)
		first := task.Step("first")
		require.Equal(t, orchestration.StepEnqueued, first.State, "handed back to the queue")
		require.Zero(t, first.Attempts, "the interrupted attempt does not count")

		// Another worker picks it up at once.
		other := NewRegistry()
		other.MustRegister("w_drain_back.First", HandlerFunc(okHandler))
		other.MustRegister("w_drain_back.Second", HandlerFunc(okHandler))
		f.startWorker(t, other, Config{Namespaces: []string{"w_drain_back"}})
		task = f.waitForState(t, taskUUID, orchestration.TaskComplete)
		require.Equal(t, 1, task.Step("first").Attempts)
	})
}

func TestWorkerExtendsTheLeaseOfLongSteps(t *testing.T) {
	t.Parallel()
	def := twoSteps("w_lease", 2, 3)
	f := setup(t, def)
	started, release := make(chan struct{}), make(chan struct{})
	registry := NewRegistry()
	registry.MustRegister("w_lease.First", HandlerFunc(func(context.Context, *TaskSequenceStep) (StepResult, error) {
		close(started)
		<-release
		return StepResult{Result: 1}, nil
	}))
	registry.MustRegister("w_lease.Second", HandlerFunc(okHandler))
	f.startWorker(t, registry, Config{Namespaces: []string{"w_lease"}, LeaseMargin: time.Second})
	taskUUID := f.create(t, def)
	<-started
	leaseOf := func() time.Time {
		var until time.Time
		require.NoError(t, f.db.Pool.QueryRow(t.Context(), `SELECT claim_expires_at FROM tasker.workflow_steps WHERE task_uuid = $1 AND name = 'first'`, taskUUID).Scan(&until))
		return until
	}
	first := leaseOf()
	require.Eventually(t, func() bool { return leaseOf().After(first) }, 5*time.Second, 50*time.Millisecond, "the lease is extended while the handler runs")
	close(release)
	f.waitForState(t, taskUUID, orchestration.TaskComplete)
}

func TestWorkerGathersItsReadsUnderLoad(t *testing.T) {
	t.Parallel()
	def := template.Definition{
		NamespaceName: "w_gather", Name: "one_step", Version: "1.0.0", IdentityStrategy: template.IdentityAlwaysUnique,
		Steps: []template.Step{{Name: "only", Handler: template.Handler{Callable: "w_gather.Only"}}},
	}
	f := setup(t, def)
	registry := NewRegistry()
	registry.MustRegister("w_gather.Only", HandlerFunc(okHandler))
	createAll := func(n int) []uuid.UUID {
		tasks := make([]uuid.UUID, n)
		for i := range tasks {
			tasks[i] = f.create(t, def)
		}
		return tasks
	}
	waitAll := func(tasks []uuid.UUID) []*orchestration.Task {
		done := make([]*orchestration.Task, len(tasks))
		for i, id := range tasks {
			done[i] = f.waitForState(t, id, orchestration.TaskComplete)
		}
		return done
	}

	// A burst waiting when the worker starts: its first round reads all of
	// it, gatherAfter messages or more. Wake-ups then come from the queue's
	// notifications alone (no poll), so the next round is the one the next
	// task's notification starts.
	burst := createAll(gatherAfter + 2)
	const gather = 3 * time.Second
	f.startWorker(t, registry, Config{Namespaces: []string{"w_gather"}, Concurrency: 64, ReadGather: gather, PollInterval: time.Hour})
	waitAll(burst)

	// Three tasks created one after another, each in its own transaction:
	// the first one's notification wakes the worker, which waits before it
	// reads, so that one read, and one claim, takes all three.
	started := map[time.Time]int{}
	for _, task := range waitAll(createAll(3)) {
		started[*task.Step("only").StartedAt]++
	}
	require.Len(t, started, 1, "the three steps were claimed in one transaction (one started_at): %v", started)

	// That round read three messages, fewer than gatherAfter: the next
	// task is read at once, without the wait.
	began := time.Now()
	waitAll(createAll(1))
	require.Less(t, time.Since(began), gather/2, "a lone task waits for no gathering")
}

// gaugeValue reads the gauge called name from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, family := range families {
		if family.GetName() == name {
			require.Len(t, family.GetMetric(), 1)
			return family.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestPoolSize(t *testing.T) {
	for _, c := range []struct{ concurrency, want int }{
		{0, 5}, {1, 5}, {16, 20}, {28, 32}, {29, 32}, {256, 32},
	} {
		if got := PoolSize(c.concurrency); got != c.want {
			t.Errorf("PoolSize(%d) = %d, want %d", c.concurrency, got, c.want)
		}
	}
}
