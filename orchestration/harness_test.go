package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/template"
)

// bundle is what a test gets besides the engine under test.
type bundle struct {
	db      *pgtest.Database
	pool    *pgxpool.Pool
	queries *dbsqlc.Queries
	queue   *queue.Client
	worker  *testWorker
}

// setup gives the test its own migrated database, an engine over it with
// fast test timings, and an in-test worker serving the given templates,
// which it registers.
func setup(t *testing.T, defs ...template.Definition) (*Engine, *bundle) {
	t.Helper()
	db := pgtest.NewDatabase(t)
	engine := newTestEngine(t, db.Pool, "orchestrator-1")
	for _, def := range defs {
		_, err := engine.Templates().Register(t.Context(), def, "test")
		require.NoError(t, err)
	}
	return engine, &bundle{
		db:      db,
		pool:    db.Pool,
		queries: dbsqlc.New(),
		queue:   queue.New(),
		worker:  newTestWorker(t, db.Pool, "worker-1", defs),
	}
}

func newTestEngine(t *testing.T, pool *pgxpool.Pool, id string) *Engine {
	t.Helper()
	return NewEngine(pool, Config{
		ProcessID:     id,
		PollInterval:  20 * time.Millisecond,
		SweepInterval: 20 * time.Millisecond,
		Rand:          func() float64 { return 0.5 },
	})
}

// handlerFunc computes one attempt's outcome from the claim and its input.
type handlerFunc func(claim *dispatch.Claim, input *dispatch.StepInput) dispatch.Outcome

// testWorker reads namespace queues and runs steps through dispatch.Executor
// like a real worker, with handlers chosen per step name. It also checks,
// at every claim, that all of the step's parents are done. Its methods may
// run from several goroutines.
type testWorker struct {
	pool       *pgxpool.Pool
	executor   *dispatch.Executor
	queue      *queue.Client
	queries    *dbsqlc.Queries
	namespaces []string

	mu         sync.Mutex
	handlers   map[string]handlerFunc
	parents    map[string][]string // step name → parents, for the default handler
	violations []string
	loopErrors []string       // errors of runWorker's loop
	runs       map[string]int // step name → attempts run
}

func newTestWorker(t *testing.T, pool *pgxpool.Pool, id string, defs []template.Definition) *testWorker {
	t.Helper()
	executor, err := dispatch.NewExecutor(pool, dispatch.ExecutorConfig{WorkerID: id, LeaseMargin: 5 * time.Second})
	require.NoError(t, err)
	w := &testWorker{
		pool: pool, executor: executor, queue: queue.New(), queries: dbsqlc.New(),
		handlers: map[string]handlerFunc{}, parents: map[string][]string{}, runs: map[string]int{},
	}
	for _, def := range defs {
		w.namespaces = append(w.namespaces, def.NamespaceName)
		for _, step := range def.Steps {
			w.parents[step.Name] = step.DependsOn
		}
	}
	return w
}

// handle sets the handler of the named step (default: squareOfParents of
// the step's parents).
func (w *testWorker) handle(step string, h handlerFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handlers[step] = h
}

// runOnce reads one batch from each namespace queue and runs every step it
// can claim. It returns how many messages it read.
func (w *testWorker) runOnce(ctx context.Context) (int, error) {
	read := 0
	for _, ns := range w.namespaces {
		msgs, err := w.queue.Read(ctx, w.pool, dispatch.StepQueue(ns), 30*time.Second, 32)
		if err != nil {
			return read, err
		}
		read += len(msgs)
		for _, msg := range msgs {
			if err := w.runMessage(ctx, dispatch.StepQueue(ns), msg); err != nil {
				return read, err
			}
		}
	}
	return read, nil
}

func (w *testWorker) runMessage(ctx context.Context, queueName string, msg queue.Message) error {
	claim, err := w.executor.Claim(ctx, queueName, msg)
	if errors.Is(err, dispatch.ErrNotClaimable) || errors.Is(err, dispatch.ErrMalformed) {
		return nil
	}
	if err != nil {
		return err
	}
	w.checkParents(ctx, claim)
	input := claim.Input
	outcome := w.handlerFor(claim.Step.Name)(claim, input)
	err = w.executor.Record(ctx, claim, outcome)
	if errors.Is(err, dispatch.ErrClaimLost) {
		return nil
	}
	return err
}

func (w *testWorker) handlerFor(step string) handlerFunc {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runs[step]++
	if h, ok := w.handlers[step]; ok {
		return h
	}
	return squareOfParents(w.parents[step])
}

// checkParents records a violation when a claimed step has a parent that is
// not done.
func (w *testWorker) checkParents(ctx context.Context, claim *dispatch.Claim) {
	parents, err := w.queries.ListStepParents(ctx, w.pool, dbsqlc.ListStepParentsParams{TaskUUID: claim.Step.TaskUUID, StepUUID: claim.Step.StepUUID})
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.violations = append(w.violations, fmt.Sprintf("%s: checking parents failed: %v", claim.Step.Name, err))
		return
	}
	for _, p := range parents {
		if !StepState(p.State).Satisfied() {
			w.violations = append(w.violations, fmt.Sprintf("%s started while parent %s was %s", claim.Step.Name, p.Name, p.State))
		}
	}
}

func (w *testWorker) orderViolations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.violations...)
}

// squareOfParents returns the math workflows' handler for a step with the
// given parents: a root squares even_number, any other step squares the
// product of its parents' values. A missing parent value is a retryable
// MISSING_DEPENDENCY error.
func squareOfParents(parents []string) handlerFunc {
	return func(claim *dispatch.Claim, input *dispatch.StepInput) dispatch.Outcome {
		product := big.NewInt(1)
		if len(parents) == 0 {
			var ctxValue struct {
				EvenNumber json.Number `json:"even_number"`
			}
			if err := json.Unmarshal(input.Task.Context, &ctxValue); err != nil || ctxValue.EvenNumber == "" {
				return failure("MISSING_CONTEXT_FIELD", "even_number is missing", false)
			}
			product.SetString(ctxValue.EvenNumber.String(), 10)
		}
		for _, name := range parents {
			var v struct {
				Value string `json:"value"`
			}
			if err := json.Unmarshal(input.Ancestors[name], &v); err != nil || v.Value == "" {
				return failure("MISSING_DEPENDENCY", "no value from "+name, true)
			}
			n, _ := new(big.Int).SetString(v.Value, 10)
			product.Mul(product, n)
		}
		result, _ := json.Marshal(map[string]string{"value": product.Mul(product, product).String(), "step": claim.Step.Name})
		return dispatch.Outcome{Result: result}
	}
}

func failure(code, message string, retryable bool) dispatch.Outcome {
	return dispatch.Outcome{Error: &dispatch.StepError{Code: code, Message: message, Retryable: retryable}}
}

// drive runs the worker, the result processing and the sweeper in turns
// until done returns true, failing the test after timeout.
func drive(t *testing.T, engine *Engine, b *bundle, done func() bool) {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(30 * time.Second)
	for !done() {
		require.True(t, time.Now().Before(deadline), "workflow did not reach the expected state in time")
		_, err := b.worker.runOnce(ctx)
		require.NoError(t, err)
		_, err = engine.ProcessResults(ctx)
		require.NoError(t, err)
		_, err = engine.Sweep(ctx)
		require.NoError(t, err)
	}
}

// finished returns a done-func for drive: the task reached a state that
// nothing but a person changes.
func finished(t *testing.T, engine *Engine, taskUUID uuid.UUID) func() bool {
	t.Helper()
	return func() bool {
		task, err := engine.GetTask(t.Context(), taskUUID)
		require.NoError(t, err)
		return task.State.Terminal() || task.State == TaskBlockedByFailures
	}
}

func createTask(t *testing.T, engine *Engine, def template.Definition, context string) *Task {
	t.Helper()
	task, err := engine.CreateTask(t.Context(), CreateTaskRequest{
		Namespace: def.NamespaceName, Name: def.Name, Context: json.RawMessage(context),
	})
	require.NoError(t, err)
	return task
}

func stepValue(t *testing.T, task *Task, step string) string {
	t.Helper()
	s := task.Step(step)
	require.NotNil(t, s, "no step %s", step)
	var v struct {
		Value string `json:"value"`
	}
	require.NoError(t, json.Unmarshal(s.Results, &v))
	return v.Value
}
