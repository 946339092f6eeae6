package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/template"
)

// cbCreated is what one CreateTask call returned.
type cbCreated struct {
	task *Task
	err  error
}

// cbRequireAsStored checks that a task CreateTask returned is exactly what
// GetTask reads, and that its creation wrote the rows, history and queue
// messages that creating the steps pending and then enqueuing the ready
// ones wrote: every step NULL → pending ("task created"), then every root
// pending → enqueued ("root step"), one message per root step, and the
// task's pending → initializing → enqueuing_steps → steps_in_process.
func cbRequireAsStored(t *testing.T, engine *Engine, b *bundle, def template.Definition, task *Task) {
	t.Helper()
	ctx := t.Context()
	stored, err := engine.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, stored, task, "CreateTask returns what GetTask reads")

	roots := map[string]bool{}
	parents := map[string]int{}
	for _, s := range def.Steps {
		parents[s.Name] = len(s.DependsOn)
		roots[s.Name] = len(s.DependsOn) == 0
	}
	require.Len(t, task.Steps, len(def.Steps))
	require.Equal(t, len(def.Steps), task.StepCount)
	require.Equal(t, TaskStepsInProcess, task.State)
	for i, s := range task.Steps {
		require.Equal(t, def.Steps[i].Name, s.Name, "steps in template order")
		require.Zero(t, s.Attempts)
		if roots[s.Name] {
			require.Equal(t, StepEnqueued, s.State, s.Name)
			require.NotNil(t, s.EnqueuedAt, s.Name)
			require.Equal(t, task.CreatedAt, *s.EnqueuedAt, "enqueued in the creating transaction")
		} else {
			require.Equal(t, StepPending, s.State, s.Name)
			require.Nil(t, s.EnqueuedAt, s.Name)
		}
		var unmet int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT unmet_dependencies FROM tasker.workflow_steps WHERE step_uuid = $1", s.UUID).Scan(&unmet))
		require.Equal(t, parents[s.Name], unmet, s.Name)
	}
	edges := 0
	for _, s := range def.Steps {
		edges += len(s.DependsOn)
	}
	require.Equal(t, edges, tplCount(t, b.pool, "SELECT count(*) FROM tasker.workflow_step_edges WHERE task_uuid = $1", task.UUID))

	// Step history, in the order of its ids.
	history, err := b.queries.ListStepTransitions(ctx, b.pool, task.UUID)
	require.NoError(t, err)
	type record struct{ step, from, to, reason string }
	var got, want []record
	for _, h := range history {
		from := ""
		if h.FromState != nil {
			from = *h.FromState
		}
		require.Equal(t, "orchestrator-1", h.Actor)
		require.Zero(t, h.Attempt)
		got = append(got, record{nameOf(t, task, h.StepUUID), from, h.ToState, h.Reason})
	}
	rootCount := 0
	for _, s := range task.Steps {
		want = append(want, record{s.Name, "", "pending", "task created"})
	}
	for _, s := range task.Steps {
		if roots[s.Name] {
			rootCount++
			want = append(want, record{s.Name, "pending", "enqueued", "root step"})
		}
	}
	require.Equal(t, want, got)

	// Task history.
	transitions, err := b.queries.ListTaskTransitions(ctx, b.pool, task.UUID)
	require.NoError(t, err)
	var chain []record
	for _, tr := range transitions {
		from := ""
		if tr.FromState != nil {
			from = *tr.FromState
		}
		require.Equal(t, "orchestrator-1", tr.Actor)
		chain = append(chain, record{"", from, tr.ToState, tr.Reason})
	}
	require.Equal(t, []record{
		{"", "", "pending", "task created"},
		{"", "pending", "initializing", fmt.Sprintf("%d steps created from the template", len(def.Steps))},
		{"", "initializing", "enqueuing_steps", fmt.Sprintf("enqueuing %d root steps", rootCount)},
		{"", "enqueuing_steps", "steps_in_process", "root steps enqueued"},
	}, chain)

	// One message per root step, which the worker side accepts, with the
	// body encoding/json gives a StepMessage.
	rows, err := b.pool.Query(ctx, "SELECT message::text FROM "+pgx.Identifier{"pgmq", "q_" + dispatch.StepQueue(def.NamespaceName)}.Sanitize()+
		" WHERE message->>'task_uuid' = $1 ORDER BY msg_id", task.UUID.String())
	require.NoError(t, err)
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, bodies, rootCount)
	for _, body := range bodies {
		msg, err := dispatch.DecodeStepMessage([]byte(body))
		require.NoError(t, err)
		step := task.Step(msg.StepName)
		require.NotNil(t, step, "message for an unknown step: %s", body)
		require.True(t, roots[step.Name], "message for a step that is not a root: %s", body)
		expected, err := json.Marshal(dispatch.StepMessage{
			TaskUUID: task.UUID, StepUUID: step.UUID, StepName: step.Name,
			Namespace: def.NamespaceName, CorrelationID: task.CorrelationID,
		})
		require.NoError(t, err)
		require.JSONEq(t, string(expected), body)
	}
}

// nameOf returns the name of one of the task's steps.
func nameOf(t *testing.T, task *Task, step uuid.UUID) string {
	t.Helper()
	for _, s := range task.Steps {
		if s.UUID == step {
			return s.Name
		}
	}
	require.Failf(t, "unknown step", "step %s is not one of task %s", step, task.UUID)
	return ""
}

func TestCreateTaskReturnsTheTaskAsStored(t *testing.T) {
	t.Parallel()
	fanIn := definition("fan_in_workflow", "fan_in",
		testStep{"left", nil},
		testStep{"right", nil},
		testStep{"join", []string{"left", "right"}},
	)
	defs := []template.Definition{linearWorkflow(), diamondWorkflow(), treeWorkflow(), mixedDAGWorkflow(), fanIn}
	engine, b := setup(t, defs...)
	for _, def := range defs {
		t.Run(def.NamespaceName, func(t *testing.T) {
			req := ctRequest(def, `{"even_number": 2, "note": "caf\u00e9",   "nested": {"b": 1, "a": [1, 2.50]}}`)
			req.IdempotencyKey, req.Initiator, req.SourceSystem, req.Reason, req.Priority = "key-"+def.Name, "alice", "billing", "a reason", -3
			task, err := engine.CreateTask(t.Context(), req)
			require.NoError(t, err)
			require.Equal(t, "key-"+def.Name, task.IdempotencyKey)
			require.Equal(t, -3, task.Priority)
			require.JSONEq(t, `{"even_number": 2, "note": "café", "nested": {"a": [1, 2.50], "b": 1}}`, string(task.Context))
			cbRequireAsStored(t, engine, b, def, task)

			plain, err := engine.CreateTask(t.Context(), ctRequest(def, `{"even_number": 4}`))
			require.NoError(t, err)
			require.Empty(t, plain.IdempotencyKey)
			require.Zero(t, plain.Priority)
			cbRequireAsStored(t, engine, b, def, plain)
		})
	}
}

// cbBlocker stops the engine's creations: it creates a task of blocker
// whose insert waits for another transaction that inserted a task with the
// same identity and has not committed. While that creation waits, its flush
// is running, so the calls that come after it wait for the next flush and
// go in it together.
type cbBlocker struct {
	tx      pgx.Tx
	created chan cbCreated
}

func cbBlock(t *testing.T, engine *Engine, b *bundle, blocker template.Definition) *cbBlocker {
	t.Helper()
	ctx := t.Context()
	row, err := engine.Templates().Resolve(ctx, blocker.NamespaceName, blocker.Name, "")
	require.NoError(t, err)
	const blockingContext = `{"even_number": 2}`
	id, err := taskIdentity(row, ctRequest(blocker, blockingContext), json.RawMessage(blockingContext))
	require.NoError(t, err)
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	_, err = tx.Exec(ctx, `INSERT INTO tasker.tasks (task_uuid, template_id, namespace_name, name, version,
		state, context, identity_hash, correlation_id, step_count)
		VALUES (gen_random_uuid(), $1, $2, $3, $4, 'steps_in_process', '{}', $5, gen_random_uuid(), 0)`,
		row.TemplateID, row.NamespaceName, row.Name, row.Version, id.hash)
	require.NoError(t, err)

	blk := &cbBlocker{tx: tx, created: make(chan cbCreated, 1)}
	go func() {
		task, err := engine.CreateTask(ctx, ctRequest(blocker, blockingContext))
		blk.created <- cbCreated{task, err}
	}()
	require.Eventually(t, func() bool {
		return tplCount(t, b.pool, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") == 1
	}, 10*time.Second, 2*time.Millisecond, "the blocking creation waits")
	return blk
}

// release lets the blocked creation go on (the other transaction rolls
// back) and returns the task it created.
func (blk *cbBlocker) release(t *testing.T) *Task {
	t.Helper()
	require.NoError(t, blk.tx.Rollback(t.Context()))
	got := <-blk.created
	require.NoError(t, got.err)
	return got.task
}

// cbWaitForWaiting waits until n calls wait for the next flush.
func cbWaitForWaiting(t *testing.T, engine *Engine, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		engine.creates.mu.Lock()
		defer engine.creates.mu.Unlock()
		return len(engine.creates.waiting) == n
	}, 10*time.Second, 2*time.Millisecond, "%d calls wait for the next flush", n)
}

// cbTransactions counts the distinct transactions that wrote the tasks.
func cbTransactions(t *testing.T, b *bundle, tasks []uuid.UUID) int {
	t.Helper()
	return tplCount(t, b.pool, "SELECT count(DISTINCT xmin::text) FROM tasker.tasks WHERE task_uuid = ANY($1)", tasks)
}

// cbStatements counts the distinct statements that wrote the tasks: the
// rows one statement writes share its transaction (xmin) and its command
// id within the transaction (cmin), which every statement of a
// transaction has its own of.
func cbStatements(t *testing.T, b *bundle, tasks []uuid.UUID) int {
	t.Helper()
	return tplCount(t, b.pool, "SELECT count(DISTINCT (xmin::text, cmin::text)) FROM tasker.tasks WHERE task_uuid = ANY($1)", tasks)
}

// blockerWorkflow is the template of the creation that holds the flush.
func blockerWorkflow() template.Definition {
	return definition("blocker_workflow", "blocker", testStep{"only", nil})
}

// Creations that arrive while a flush runs go together in the next one:
// one transaction for every task, across templates and namespaces, and the
// calls whose task is a duplicate (of a task in the same batch or of an
// older one) or whose template changed get their own answer without
// failing the others.
func TestCreateTaskGroupCommit(t *testing.T) {
	t.Parallel()
	linear, diamond, tree, blocker := linearWorkflow(), diamondWorkflow(), treeWorkflow(), blockerWorkflow()
	changedTree := treeWorkflow()
	changedTree.InputSchema = json.RawMessage(`{"type": "object", "required": ["even_number", "customer"]}`)
	engine, b := setup(t, linear, diamond, tree, blocker)
	older := createTask(t, engine, diamond, `{"even_number": 1000}`)

	blk := cbBlock(t, engine, b, blocker)

	type call struct {
		def     template.Definition
		context string
	}
	var calls []call
	for i := range 12 {
		calls = append(calls, call{linear, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1))})
		calls = append(calls, call{diamond, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1))})
	}
	calls = append(calls,
		call{linear, `{"even_number": 2}`},     // the same as the first linear call
		call{linear, `{"even_number": 2}`},     // and once more
		call{diamond, `{"even_number": 1000}`}, // the same as the older task
		call{tree, `{"even_number": 2}`},       // its template changes while it waits
	)
	results := make([]cbCreated, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			results[i].task, results[i].err = engine.CreateTask(t.Context(), ctRequest(c.def, c.context))
		})
	}
	cbWaitForWaiting(t, engine, len(calls))
	_, err := engine.Templates().Register(t.Context(), changedTree, "test")
	require.NoError(t, err)
	first := blk.release(t)
	wg.Wait()

	var created []uuid.UUID
	byContext := map[string]uuid.UUID{}
	var duplicates []*DuplicateTaskError
	for i, c := range calls {
		res := results[i]
		if c.def.Name == tree.Name {
			var invalid *InvalidContextError
			require.ErrorAs(t, res.err, &invalid, "after the template changed, the call starts over with the new schema")
			continue
		}
		if dup, ok := errors.AsType[*DuplicateTaskError](res.err); ok {
			duplicates = append(duplicates, dup)
			continue
		}
		require.NoError(t, res.err, "call %d", i)
		cbRequireAsStored(t, engine, b, c.def, res.task)
		created = append(created, res.task.UUID)
		key := c.def.Name + c.context
		require.NotContains(t, byContext, key)
		byContext[key] = res.task.UUID
	}
	require.Len(t, created, 24)
	require.Len(t, duplicates, 3)
	for _, dup := range duplicates {
		require.Contains(t, []uuid.UUID{byContext[linear.Name+`{"even_number": 2}`], older.UUID}, dup.ExistingTaskUUID)
	}
	require.Equal(t, 1, cbTransactions(t, b, created), "the waiting calls share one transaction")
	require.Equal(t, 2, cbStatements(t, b, created), "one statement per step queue: linear's and diamond's")
	require.Equal(t, 2, cbTransactions(t, b, append(created, first.UUID)), "the blocking creation had its own")
	require.Equal(t, 26, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"), "the older, the blocking and the 24 new tasks (and no tree task)")
	require.EqualValues(t, 12, ctQueueLength(t, b, linear), "one root message per linear task")
	require.EqualValues(t, 12+1, ctQueueLength(t, b, diamond), "one root message per diamond task, the older one's included")
	require.Zero(t, ctQueueLength(t, b, tree))

	// The tasks run to the end.
	for _, id := range created {
		drive(t, engine, b, finished(t, engine, id))
		task, err := engine.GetTask(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, TaskComplete, task.State)
	}
}

// When the shared transaction fails, every call creates its task on its
// own: the one that broke it gets its error, the others their tasks.
func TestCreateTaskGroupCommitFailureRetriesEachAlone(t *testing.T) {
	t.Parallel()
	linear, blocker := linearWorkflow(), blockerWorkflow()
	engine, b := setup(t, linear, blocker)
	_, err := b.pool.Exec(t.Context(), `
		CREATE FUNCTION tasker.refuse_task() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'task refused by the test'; END $$;
		CREATE TRIGGER refuse_task BEFORE INSERT ON tasker.tasks
		FOR EACH ROW WHEN (NEW.initiator = 'refuse') EXECUTE FUNCTION tasker.refuse_task();`)
	require.NoError(t, err)

	blk := cbBlock(t, engine, b, blocker)
	const n = 10
	results := make([]cbCreated, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := ctRequest(linear, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1)))
			if i == n/2 {
				req.Initiator = "refuse"
			}
			results[i].task, results[i].err = engine.CreateTask(t.Context(), req)
		})
	}
	cbWaitForWaiting(t, engine, n)
	blk.release(t)
	wg.Wait()

	var created []uuid.UUID
	for i, res := range results {
		if i == n/2 {
			require.ErrorContains(t, res.err, "task refused by the test")
			require.ErrorContains(t, res.err, "creating task of linear_workflow/mathematical_sequence@1.0.0")
			continue
		}
		require.NoError(t, res.err, "call %d", i)
		cbRequireAsStored(t, engine, b, linear, res.task)
		created = append(created, res.task.UUID)
	}
	require.Equal(t, n-1, cbTransactions(t, b, created), "each created on its own after the shared transaction failed")
	require.Equal(t, n-1, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks WHERE namespace_name = 'linear_workflow'"))
	require.EqualValues(t, n-1, ctQueueLength(t, b, linear))
	require.Equal(t, 4*(n-1), tplCount(t, b.pool, "SELECT count(*) FROM tasker.task_transitions t JOIN tasker.tasks USING (task_uuid) WHERE namespace_name = 'linear_workflow'"))
}

// A pgx batch outside a transaction is one implicit transaction: an error in
// one statement rolls back the ones before it. createTogether relies on it.
func TestCreateTaskBatchIsOneTransaction(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	_, err := b.pool.Exec(t.Context(), "CREATE TABLE tasker.batch_probe (id integer PRIMARY KEY)")
	require.NoError(t, err)
	batch := &pgx.Batch{}
	batch.Queue("INSERT INTO tasker.batch_probe VALUES (1)")
	batch.Queue("INSERT INTO tasker.batch_probe VALUES (2)")
	batch.Queue("INSERT INTO tasker.batch_probe VALUES (1)")
	err = b.pool.SendBatch(t.Context(), batch).Close()
	require.Error(t, err, "the duplicate key fails the batch")
	require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.batch_probe"), "nothing of the batch is kept")
}

// A caller that gives up while it waits returns at once. A call dropped
// before its statement was sent creates nothing; a flush whose callers all
// gave up is cancelled; creations go on working afterwards.
func TestCreateTaskCallerGivesUp(t *testing.T) {
	t.Parallel()
	linear, blocker := linearWorkflow(), blockerWorkflow()
	engine, b := setup(t, linear, blocker)

	t.Run("WhileWaitingForTheNextFlush", func(t *testing.T) {
		blk := cbBlock(t, engine, b, blocker)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := engine.CreateTask(ctx, ctRequest(linear, `{"even_number": 42}`))
			done <- err
		}()
		cbWaitForWaiting(t, engine, 1)
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			require.Fail(t, "CreateTask did not return after its context was cancelled")
		}
		blk.release(t)
		cbWaitForWaiting(t, engine, 0)
		require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks WHERE namespace_name = 'linear_workflow'"),
			"a call dropped before its statement was sent creates nothing")
	})

	t.Run("WhileItsStatementRuns", func(t *testing.T) {
		row, err := engine.Templates().Resolve(t.Context(), blocker.NamespaceName, blocker.Name, "")
		require.NoError(t, err)
		const ctxText = `{"even_number": 8}`
		id, err := taskIdentity(row, ctRequest(blocker, ctxText), json.RawMessage(ctxText))
		require.NoError(t, err)
		tx, err := b.pool.Begin(t.Context())
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(context.WithoutCancel(t.Context())) }()
		_, err = tx.Exec(t.Context(), `INSERT INTO tasker.tasks (task_uuid, template_id, namespace_name, name, version,
			state, context, identity_hash, correlation_id, step_count)
			VALUES (gen_random_uuid(), $1, $2, $3, $4, 'steps_in_process', '{}', $5, gen_random_uuid(), 0)`,
			row.TemplateID, row.NamespaceName, row.Name, row.Version, id.hash)
		require.NoError(t, err)

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := engine.CreateTask(ctx, ctRequest(blocker, ctxText))
			done <- err
		}()
		require.Eventually(t, func() bool {
			return tplCount(t, b.pool, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") == 1
		}, 10*time.Second, 2*time.Millisecond, "the creation waits")
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			require.Fail(t, "CreateTask did not return after its context was cancelled")
		}
		// The statement was sent: whether the task is created depends on
		// whether the server saw the cancellation before it went on.
		require.NoError(t, tx.Rollback(t.Context()))
		require.LessOrEqual(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks WHERE identity_hash = $1", id.hash), 1)
	})

	t.Run("LaterCreationsWork", func(t *testing.T) {
		task := createTask(t, engine, linear, `{"even_number": 44}`)
		cbRequireAsStored(t, engine, b, linear, task)
	})
}

// Many concurrent creations of several templates in several namespaces,
// with duplicates among them, each created once, as stored, and runnable.
func TestCreateTaskManyConcurrently(t *testing.T) {
	t.Parallel()
	defs := []template.Definition{linearWorkflow(), diamondWorkflow(), treeWorkflow(), mixedDAGWorkflow()}
	engine, b := setup(t, defs...)
	const perTemplate, copies = 40, 2
	type call struct {
		def template.Definition
		n   int
	}
	var calls []call
	for _, def := range defs {
		for i := range perTemplate {
			for range copies {
				calls = append(calls, call{def, i})
			}
		}
	}
	results := make([]cbCreated, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			results[i].task, results[i].err = engine.CreateTask(t.Context(), ctRequest(c.def, fmt.Sprintf(`{"even_number": %d}`, 2*(c.n+1))))
		})
	}
	wg.Wait()

	winners := map[string]uuid.UUID{}
	var duplicates []string
	var created []uuid.UUID
	for i, c := range calls {
		key := fmt.Sprintf("%s/%d", c.def.Name, c.n)
		if _, ok := errors.AsType[*DuplicateTaskError](results[i].err); ok {
			duplicates = append(duplicates, key)
			continue
		}
		require.NoError(t, results[i].err)
		require.NotContains(t, winners, key, "created twice")
		winners[key] = results[i].task.UUID
		created = append(created, results[i].task.UUID)
		cbRequireAsStored(t, engine, b, c.def, results[i].task)
	}
	require.Len(t, winners, len(defs)*perTemplate)
	require.Len(t, duplicates, len(defs)*perTemplate*(copies-1))
	for i, c := range calls {
		if dup, ok := errors.AsType[*DuplicateTaskError](results[i].err); ok {
			require.Equal(t, winners[fmt.Sprintf("%s/%d", c.def.Name, c.n)], dup.ExistingTaskUUID)
		}
	}
	transactions := cbTransactions(t, b, created)
	t.Logf("%d tasks created in %d transactions", len(created), transactions)
	require.LessOrEqual(t, cbStatements(t, b, created), len(defs)*transactions, "at most one statement per step queue in a transaction")
	for _, def := range defs {
		require.EqualValues(t, perTemplate, ctQueueLength(t, b, def), def.Name)
	}
	slices.SortFunc(created, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	for _, id := range created[:8] {
		drive(t, engine, b, finished(t, engine, id))
	}
}

// Clients that create tasks one after another share transactions of all
// their tasks: after a flush of several calls, the next waits for as many
// more (CreateBatchWait) before it starts. With nobody coming, the wait
// ends, and the batcher stops.
func TestCreateTaskGathersTheCallersOfTheLastFlush(t *testing.T) {
	t.Parallel()
	linear, blocker := linearWorkflow(), blockerWorkflow()

	// Three clients' first tasks wait behind a held flush, so that they
	// share the next one; each client then creates its second task as soon
	// as it has its first, and those are gathered.
	t.Run("ClientsThatComeBack", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t, linear, blocker)
		engine.cfg.CreateBatchWait = 5 * time.Second // far longer than the clients take to come back
		blk := cbBlock(t, engine, b, blocker)
		const clients = 3
		first, second := make([]cbCreated, clients), make([]cbCreated, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				first[i].task, first[i].err = engine.CreateTask(t.Context(), ctRequest(linear, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1))))
				if first[i].err != nil {
					return
				}
				second[i].task, second[i].err = engine.CreateTask(t.Context(), ctRequest(linear, fmt.Sprintf(`{"even_number": %d}`, 100+2*(i+1))))
			})
		}
		cbWaitForWaiting(t, engine, clients)
		blk.release(t)
		wg.Wait()
		var firsts, seconds []uuid.UUID
		for i := range clients {
			require.NoError(t, first[i].err)
			require.NoError(t, second[i].err)
			firsts, seconds = append(firsts, first[i].task.UUID), append(seconds, second[i].task.UUID)
		}
		require.Equal(t, 1, cbTransactions(t, b, firsts), "the first tasks shared the flush after the held one")
		require.Equal(t, 1, cbTransactions(t, b, seconds), "the second tasks were gathered into one flush")
		require.Equal(t, 2, cbTransactions(t, b, append(firsts, seconds...)))
	})

	t.Run("NobodyComesBack", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t, linear, blocker)
		engine.cfg.CreateBatchWait = 20 * time.Millisecond
		blk := cbBlock(t, engine, b, blocker)
		results := make([]cbCreated, 2)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() {
				results[i].task, results[i].err = engine.CreateTask(t.Context(), ctRequest(linear, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1))))
			})
		}
		cbWaitForWaiting(t, engine, len(results))
		blk.release(t)
		wg.Wait()
		for _, r := range results {
			require.NoError(t, r.err)
		}
		require.Eventually(t, func() bool {
			engine.creates.mu.Lock()
			defer engine.creates.mu.Unlock()
			return !engine.creates.flushing
		}, 10*time.Second, 2*time.Millisecond, "the batcher stops after its wait")
		cbRequireAsStored(t, engine, b, linear, createTask(t, engine, linear, `{"even_number": 1000}`))
	})
}
