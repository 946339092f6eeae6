package orchestration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/template"
)

// The fast path of result processing (settle.go): the successful results of
// a batch are settled together in one transaction; everything else goes
// through the per-message path.

// fastPathFailed is what ProcessResults logs when the batch transaction
// failed and it fell back to the per-message path.
const fastPathFailed = "settling a batch of results together failed"

func TestSettleManyTasksInOneTransaction(t *testing.T) {
	t.Parallel()
	defs := []template.Definition{diamondWorkflow(), linearWorkflow(), treeWorkflow()}
	_, b := setup(t, defs...)
	var logs syncBuffer
	engine := sbEngine(t, b.pool, "orchestrator-1", 1000, &logs)
	ctx := t.Context()

	counts := map[string]int{"diamond_pattern": 30, "mathematical_sequence": 30, "hierarchical_tree": 10}
	var tasks []*Task
	for _, def := range defs {
		for i := range counts[def.Name] {
			tasks = append(tasks, createTask(t, engine, def, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1))))
		}
	}
	sbRunAllSteps(t, b)
	// The workers of each namespace are woken: its step queue's channel is
	// notified, with the queue's name.
	listener, err := b.pool.Acquire(ctx)
	require.NoError(t, err)
	defer listener.Release()
	channels := map[string]string{}
	for _, def := range defs {
		stepQueue := dispatch.StepQueue(def.NamespaceName)
		channels[queue.Channel(stepQueue)] = stepQueue
		_, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{queue.Channel(stepQueue)}.Sanitize())
		require.NoError(t, err)
	}
	read, err := engine.ProcessResults(ctx)
	require.NoError(t, err)
	require.Equal(t, len(tasks), read)
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
	notified := map[string]string{}
	for len(notified) < len(channels) {
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := listener.Conn().WaitForNotification(waitCtx)
		cancel()
		require.NoError(t, err, "notified so far: %v", notified)
		notified[n.Channel] = n.Payload
	}
	require.Equal(t, channels, notified)

	// Every root was completed, and every child released, by one transaction.
	var completions, enqueued, transactions int
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE to_state = 'complete'),
		       count(*) FILTER (WHERE to_state = 'enqueued' AND from_state = 'pending' AND reason LIKE 'parents complete after %'),
		       count(DISTINCT xmin::text)
		FROM tasker.step_transitions
		WHERE to_state = 'complete' OR reason LIKE 'parents complete after %'`).Scan(&completions, &enqueued, &transactions))
	require.Equal(t, len(tasks), completions)
	require.Equal(t, 2*30+30+2*10, enqueued)
	require.Equal(t, 1, transactions, "the batch was settled in one transaction")

	// The children's messages are those sendSteps would send: one per step.
	want := map[uuid.UUID]dispatch.StepMessage{}
	for _, task := range tasks {
		current, err := engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskStepsInProcess, current.State)
		for _, s := range current.Steps {
			switch s.State {
			case StepComplete:
				require.Equal(t, 1, s.Attempts, s.Name)
			case StepEnqueued:
				want[s.UUID] = dispatch.StepMessage{
					TaskUUID: task.UUID, StepUUID: s.UUID, StepName: s.Name,
					Namespace: task.Namespace, CorrelationID: task.CorrelationID,
				}
			default:
				require.Equal(t, StepPending, s.State, s.Name)
			}
		}
	}
	require.Len(t, want, enqueued)
	got := map[uuid.UUID]dispatch.StepMessage{}
	for _, def := range defs {
		for _, body := range sbQueueBodies(t, b, dispatch.StepQueue(def.NamespaceName)) {
			msg, err := dispatch.DecodeStepMessage(body)
			require.NoError(t, err)
			require.Equal(t, def.NamespaceName, msg.Namespace)
			require.NotContains(t, got, msg.StepUUID, "step %s sent twice", msg.StepName)
			got[msg.StepUUID] = msg
		}
	}
	require.Equal(t, want, got)

	drive(t, engine, b, func() bool { return countTasks(t, b, TaskComplete) == len(tasks) })
	for _, task := range tasks {
		done, err := engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		requireTransitions(t, b, done)
	}
	requireDiamondValues(t, b, counts["diamond_pattern"])
	require.Empty(t, b.worker.orderViolations())
	require.NotContains(t, logs.String(), fastPathFailed)
}

func TestSettleDiamondJoinInOneBatch(t *testing.T) {
	t.Parallel()
	def := diamondWorkflow()
	_, b := setup(t, def)
	var logs syncBuffer
	engine := sbEngine(t, b.pool, "orchestrator-1", 1000, &logs)
	ctx := t.Context()
	const tasks = 20
	ids := sbCreateTasks(t, engine, def, tasks)
	sbRunAllSteps(t, b)
	_, err := engine.ProcessResults(ctx)
	require.NoError(t, err)

	// Both branches of every diamond hand their results back before the
	// orchestrator looks: each batch completes both parents of diamond_end.
	sbRunAllSteps(t, b)
	lastBranch := map[uuid.UUID]string{}
	for _, body := range frResultBodies(t, b) {
		msg, err := dispatch.DecodeResultMessage(body)
		require.NoError(t, err)
		require.True(t, msg.Success)
		lastBranch[msg.TaskUUID] = sbStepName(t, b, msg.StepUUID)
	}
	require.Len(t, lastBranch, tasks)
	read, err := engine.ProcessResults(ctx)
	require.NoError(t, err)
	require.Equal(t, 2*tasks, read)

	for _, id := range ids {
		end := frStepRow(t, b, id, "diamond_end")
		require.Equal(t, string(StepEnqueued), end.State)
		require.Zero(t, end.UnmetDependencies, "both parents counted, once each")
		history := frStepHistory(t, b, id, "diamond_end")
		require.Equal(t, []string{"pending", "enqueued"}, frToStates(history))
		require.Equal(t, "parents complete after "+lastBranch[id], history[1].Reason,
			"the reason names the parent whose message came last")
		require.Equal(t, "orchestrator-1", history[1].Actor)
		for _, branch := range []string{"diamond_branch_b", "diamond_branch_c"} {
			completed := frTransitionsTo(frStepHistory(t, b, id, branch), StepComplete)
			require.Len(t, completed, 1)
			require.Equal(t, "handler result stored", completed[0].Reason)
			require.EqualValues(t, 1, completed[0].Attempt)
		}
		task, err := engine.GetTask(ctx, id)
		require.NoError(t, err)
		require.Equal(t, TaskStepsInProcess, task.State)
	}
	ends := sbQueueBodies(t, b, dispatch.StepQueue(def.NamespaceName))
	require.Len(t, ends, tasks, "one message per diamond_end")

	// The last steps complete in one batch too and finalize every task once.
	sbRunAllSteps(t, b)
	_, err = engine.ProcessResults(ctx)
	require.NoError(t, err)
	require.Equal(t, tasks, countTasks(t, b, TaskComplete))
	for _, id := range ids {
		history, err := b.queries.ListTaskTransitions(ctx, b.pool, id)
		require.NoError(t, err)
		completed := frTaskTransitionsTo(history, TaskComplete)
		require.Len(t, completed, 1)
		require.Equal(t, "step diamond_end complete", completed[0].Reason)
		require.Equal(t, string(TaskStepsInProcess), *completed[0].FromState)
		task, err := engine.GetTask(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, task.CompletedAt)
		requireTransitions(t, b, task)
	}
	requireEachStepCompletedOnce(t, b, 4*tasks)
	requireDiamondValues(t, b, tasks)
	frRequireQuiet(t, engine, b)
	require.NotContains(t, logs.String(), fastPathFailed)
}

func TestSettleMixedBatch(t *testing.T) {
	t.Parallel()
	diamond, linear := diamondWorkflow(), linearWorkflow()
	_, b := setup(t, diamond, linear)
	var logs syncBuffer
	engine := sbEngine(t, b.pool, "orchestrator-1", 1000, &logs)
	ctx := t.Context()

	// even_number picks what diamond_branch_b does: 4 fails with a
	// retryable error on its first attempt, 6 fails for good.
	squareB := squareOfParents([]string{"diamond_start"})
	b.worker.handle("diamond_branch_b", func(claim *dispatch.Claim, input *dispatch.StepInput) dispatch.Outcome {
		switch sbEvenNumber(t, input) {
		case "4":
			if claim.Step.Attempts == 1 {
				return failure("GATEWAY_UNAVAILABLE", "try again", true)
			}
		case "6":
			return failure("VALIDATION_ERROR", "no", false)
		}
		return squareB(claim, input)
	})
	ok := createTask(t, engine, diamond, `{"even_number": 2}`)
	retried := createTask(t, engine, diamond, `{"even_number": 4}`)
	blocked := createTask(t, engine, diamond, `{"even_number": 6}`)
	lin := createTask(t, engine, linear, `{"even_number": 8}`)
	cancelled := createTask(t, engine, linear, `{"even_number": 10}`)
	sbRunAllSteps(t, b)
	_, err := engine.ProcessResults(ctx)
	require.NoError(t, err)
	sbRunAllSteps(t, b)

	// The batch: the branches' outcomes (successes and failures) and
	// linear_step_2's, each success twice; a success of a task cancelled
	// meanwhile; a stale attempt, an impossible one, an unknown task and a
	// malformed body.
	_, err = engine.CancelTask(ctx, cancelled.UUID, "")
	require.NoError(t, err)
	for _, body := range frResultBodies(t, b) {
		if msg, err := dispatch.DecodeResultMessage(body); err == nil && msg.Success {
			frSendRaw(t, b, dispatch.ResultsQueue, string(body))
		}
	}
	linStep2 := frStepRow(t, b, lin.UUID, "linear_step_2").StepUUID
	frSendRaw(t, b, dispatch.ResultsQueue, fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "attempt": 2, "success": true}`, lin.UUID, linStep2))
	impossible := frSendRaw(t, b, dispatch.ResultsQueue, fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "attempt": 99, "success": true}`, lin.UUID, linStep2))
	unknown := uuid.New()
	unknownID := frSendRaw(t, b, dispatch.ResultsQueue, fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "attempt": 1, "success": true}`, unknown, uuid.New()))
	malformed := frSendRaw(t, b, dispatch.ResultsQueue, `{"task_uuid": "nope"}`)

	read, err := engine.ProcessResults(ctx)
	require.NoError(t, err)
	require.Equal(t, 18, read, "8 outcomes, the 6 successes twice, and 4 bad messages")
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
	frRequireDeadLettered(t, b, dispatch.ResultsQueue, map[int64]string{
		impossible: "attempt 99 of step",
		unknownID:  "unknown task " + unknown.String(),
		malformed:  "not valid JSON of the expected shape",
	}, "orchestrator-1")

	// Successes: completed once, in the batch's transaction.
	var fastTx string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT xmin::text FROM tasker.step_transitions WHERE step_uuid = $1 AND to_state = 'complete'`,
		linStep2).Scan(&fastTx))
	for _, s := range []struct {
		task *Task
		name string
	}{{ok, "diamond_branch_b"}, {ok, "diamond_branch_c"}, {retried, "diamond_branch_c"}, {blocked, "diamond_branch_c"}, {lin, "linear_step_2"}} {
		completed := frTransitionsTo(frStepHistory(t, b, s.task.UUID, s.name), StepComplete)
		require.Len(t, completed, 1, s.name)
		var xmin string
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT xmin::text FROM tasker.step_transitions WHERE id = $1`, completed[0].ID).Scan(&xmin))
		require.Equal(t, fastTx, xmin, "%s of %s settled with the batch", s.name, s.task.UUID)
	}
	require.Equal(t, string(StepEnqueued), frStepRow(t, b, ok.UUID, "diamond_end").State)
	require.Equal(t, string(StepEnqueued), frStepRow(t, b, lin.UUID, "linear_step_3").State)

	// Failures: settled by the per-message path after the batch.
	require.Equal(t, string(StepWaitingForRetry), frStepRow(t, b, retried.UUID, "diamond_branch_b").State)
	require.Equal(t, string(StepError), frStepRow(t, b, blocked.UUID, "diamond_branch_b").State)
	for id, want := range map[uuid.UUID]TaskState{
		ok.UUID: TaskStepsInProcess, retried.UUID: TaskWaitingForRetry, blocked.UUID: TaskBlockedByFailures,
		lin.UUID: TaskStepsInProcess, cancelled.UUID: TaskCancelled,
	} {
		task, err := engine.GetTask(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, task.State, "task %s", id)
	}
	for _, id := range []uuid.UUID{retried.UUID, blocked.UUID} {
		end := frStepRow(t, b, id, "diamond_end")
		require.Equal(t, string(StepPending), end.State)
		require.EqualValues(t, 1, end.UnmetDependencies)
	}
	cancelledStep := frStepHistory(t, b, cancelled.UUID, "linear_step_2")
	require.Equal(t, []string{"pending", "enqueued", "in_progress", "enqueued_for_orchestration", "cancelled"}, frToStates(cancelledStep),
		"a success for a cancelled task changes nothing")

	drive(t, engine, b, func() bool {
		return finished(t, engine, ok.UUID)() && finished(t, engine, retried.UUID)() &&
			finished(t, engine, blocked.UUID)() && finished(t, engine, lin.UUID)()
	})
	for id, want := range map[uuid.UUID]TaskState{
		ok.UUID: TaskComplete, retried.UUID: TaskComplete, blocked.UUID: TaskBlockedByFailures, lin.UUID: TaskComplete,
	} {
		task, err := engine.GetTask(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, task.State, "task %s", id)
		for _, s := range task.Steps {
			require.LessOrEqual(t, len(frTransitionsTo(frStepHistory(t, b, id, s.Name), StepComplete)), 1, s.Name)
		}
	}
	require.Equal(t, "281474976710656", stepValue(t, sbGetTask(t, engine, lin.UUID), "linear_step_4"), "8^16")
	require.Empty(t, b.worker.orderViolations())
	require.NotContains(t, logs.String(), fastPathFailed)
}

func TestSettleTwoEnginesRacingOverDuplicatedResults(t *testing.T) {
	t.Parallel()
	diamond, tree := diamondWorkflow(), treeWorkflow()
	_, b := setup(t, diamond, tree)
	var logs syncBuffer
	// Small batches, so that the two engines' batches overlap in many
	// combinations of tasks.
	engines := []*Engine{
		sbEngine(t, newPool(t, b.db.URL), "orchestrator-1", 16, &logs),
		sbEngine(t, newPool(t, b.db.URL), "orchestrator-2", 16, &logs),
	}
	ctx := t.Context()
	var ids []uuid.UUID
	for i := range 40 {
		ids = append(ids, createTask(t, engines[0], diamond, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1))).UUID)
	}
	for i := range 10 {
		ids = append(ids, createTask(t, engines[0], tree, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1))).UUID)
	}

	deadline := time.Now().Add(time.Minute)
	for countTasks(t, b, TaskComplete) < len(ids) {
		require.True(t, time.Now().Before(deadline), "tasks did not finish")
		sbRunAllSteps(t, b)
		// Every outcome arrives three times, to both engines at once.
		for _, body := range frResultBodies(t, b) {
			frSendRaw(t, b, dispatch.ResultsQueue, string(body))
			frSendRaw(t, b, dispatch.ResultsQueue, string(body))
		}
		require.NoError(t, frProcessConcurrently(ctx, engines))
	}

	for _, id := range ids {
		task := sbGetTask(t, engines[0], id)
		require.Equal(t, TaskComplete, task.State)
		requireTransitions(t, b, task)
	}
	requireEachStepCompletedOnce(t, b, 4*40+8*10)
	requireDiamondValues(t, b, 40)
	var wrongTrees int
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*) FROM tasker.workflow_steps s JOIN tasker.tasks k USING (task_uuid)
		WHERE s.name = 'tree_final_convergence'
		  AND (s.results->>'value')::numeric <> power((k.context->>'even_number')::numeric, 64)`).Scan(&wrongTrees))
	require.Zero(t, wrongTrees)
	for _, s := range diamond.Steps {
		require.Equal(t, 40, frWorkerRuns(b, s.Name), "%s ran once per task", s.Name)
	}
	for _, s := range tree.Steps {
		require.Equal(t, 10, frWorkerRuns(b, s.Name), "%s ran once per task", s.Name)
	}
	require.Empty(t, b.worker.orderViolations())
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
	require.NotContains(t, logs.String(), fastPathFailed, "no batch failed (e.g. on a deadlock)")
}

func TestSettleLocksTasksInUUIDOrder(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	_, b := setup(t, def)
	var logs syncBuffer
	engine := sbEngine(t, b.pool, "orchestrator-1", 1000, &logs)
	ctx := t.Context()
	first := createTask(t, engine, def, `{"even_number": 2}`).UUID
	second := createTask(t, engine, def, `{"even_number": 4}`).UUID
	if compareUUIDs(first, second) > 0 {
		first, second = second, first
	}
	sbRunAllSteps(t, b)
	// The results arrive in the opposite order of the tasks' UUIDs.
	bodies := map[uuid.UUID]string{}
	for _, body := range frResultBodies(t, b) {
		msg, err := dispatch.DecodeResultMessage(body)
		require.NoError(t, err)
		bodies[msg.TaskUUID] = string(body)
	}
	_, err := b.pool.Exec(ctx, `DELETE FROM pgmq.q_orchestration_step_results`)
	require.NoError(t, err)
	frSendRaw(t, b, dispatch.ResultsQueue, bodies[second])
	frSendRaw(t, b, dispatch.ResultsQueue, bodies[first])

	// Another transaction holds the first task: the batch waits for it
	// before it locks the second one.
	holder, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(context.WithoutCancel(ctx)) }()
	_, err = holder.Exec(ctx, `SELECT FROM tasker.tasks WHERE task_uuid = $1 FOR NO KEY UPDATE`, first)
	require.NoError(t, err)
	processed := make(chan error, 1)
	go func() {
		_, err := engine.ProcessResults(ctx)
		processed <- err
	}()
	waitFor(t, 10*time.Second, "the batch to wait for the first task's lock", func() bool {
		var waiting bool
		require.NoError(t, b.pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT FROM pg_stat_activity
			               WHERE datname = current_database() AND wait_event_type = 'Lock'
			                 AND query LIKE '%FOR NO KEY UPDATE%' AND query LIKE '%ORDINALITY%')`).Scan(&waiting))
		return waiting
	})
	probe, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, probeErr := probe.Exec(ctx, `SELECT FROM tasker.tasks WHERE task_uuid = $1 FOR NO KEY UPDATE NOWAIT`, second)
	require.NoError(t, probe.Rollback(ctx))
	require.NoError(t, holder.Rollback(ctx))
	require.NoError(t, <-processed)
	require.NoError(t, probeErr, "the second task is not locked while the batch waits for the first")
	for _, id := range []uuid.UUID{first, second} {
		require.Equal(t, string(StepComplete), frStepRow(t, b, id, "linear_step_1").State)
		require.Equal(t, string(StepEnqueued), frStepRow(t, b, id, "linear_step_2").State)
	}
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
	require.NotContains(t, logs.String(), fastPathFailed)
}

func TestSettleConsumesItsMessagesInItsTransaction(t *testing.T) {
	t.Parallel()
	diamond := diamondWorkflow()
	_, b := setup(t, diamond)
	var logs syncBuffer
	engine := sbEngine(t, b.pool, "orchestrator-1", 1000, &logs)
	ctx := t.Context()
	const tasks = 6
	sbCreateTasks(t, engine, diamond, tasks)
	// Record every write to a result message, with its transaction.
	_, err := b.pool.Exec(ctx, `
		CREATE TABLE tasker.test_result_writes (op text, msg_id bigint, xid text);
		CREATE FUNCTION tasker.test_record_result_write() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		    INSERT INTO tasker.test_result_writes VALUES (TG_OP, OLD.msg_id, (txid_current() % 4294967296)::text);
		    RETURN NULL;
		END $$;
		CREATE TRIGGER test_record_result_write AFTER UPDATE OR DELETE ON pgmq.q_orchestration_step_results
		    FOR EACH ROW EXECUTE FUNCTION tasker.test_record_result_write();`)
	require.NoError(t, err)
	sbRunAllSteps(t, b)
	// A malformed message goes through the per-message path.
	malformed := frSendRaw(t, b, dispatch.ResultsQueue, `{"task_uuid": "nope"}`)
	require.Len(t, frResultBodies(t, b), tasks+1)

	read, err := engine.ProcessResults(ctx)
	require.NoError(t, err)
	require.Equal(t, tasks+1, read)
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)

	// Each success was deleted, and never hidden, by the transaction that
	// completed its step; the malformed message was hidden by that same
	// transaction, as a read hides it, then archived on its own.
	var settleTx string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT DISTINCT xmin::text FROM tasker.step_transitions WHERE to_state = 'complete'`).Scan(&settleTx))
	rows, err := b.pool.Query(ctx, `SELECT op, xid = $1, count(*) FROM tasker.test_result_writes GROUP BY 1, 2 ORDER BY 1, 2`, settleTx)
	require.NoError(t, err)
	type write struct {
		op     string
		settle bool
		n      int
	}
	var writes []write
	for rows.Next() {
		var w write
		require.NoError(t, rows.Scan(&w.op, &w.settle, &w.n))
		writes = append(writes, w)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []write{{"DELETE", false, 1}, {"DELETE", true, tasks}, {"UPDATE", true, 1}}, writes)
	frRequireDeadLettered(t, b, dispatch.ResultsQueue, map[int64]string{malformed: "not valid JSON of the expected shape"}, "orchestrator-1")
	require.NotContains(t, logs.String(), fastPathFailed)

	drive(t, engine, b, func() bool { return countTasks(t, b, TaskComplete) == tasks })
	requireEachStepCompletedOnce(t, b, 4*tasks)
}

func TestSettleFallsBackWhenTheBatchTransactionFails(t *testing.T) {
	t.Parallel()
	def := diamondWorkflow()
	_, b := setup(t, def)
	var logs syncBuffer
	engine := sbEngine(t, b.pool, "orchestrator-1", 1000, &logs)
	ctx := t.Context()
	const tasks = 10
	sbCreateTasks(t, engine, def, tasks)
	// Make the batch statement fail, and only it: the per-message path's
	// statements go through.
	_, err := b.pool.Exec(ctx, `
		CREATE FUNCTION tasker.test_refuse_batches() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		    IF current_query() LIKE '%WITH ORDINALITY AS i (task_uuid, step_uuid, attempt, pos)%' THEN
		        RAISE EXCEPTION 'batch refused by the test';
		    END IF;
		    RETURN NULL;
		END $$;
		CREATE TRIGGER test_refuse_batches AFTER INSERT ON tasker.step_transitions
		    FOR EACH STATEMENT EXECUTE FUNCTION tasker.test_refuse_batches();`)
	require.NoError(t, err)
	sbRunAllSteps(t, b)
	read, err := engine.ProcessResults(ctx)
	require.NoError(t, err)
	require.Equal(t, tasks, read)
	require.Contains(t, logs.String(), fastPathFailed)
	require.Contains(t, logs.String(), "batch refused by the test")
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)

	var completions, transactions int
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*), count(DISTINCT xmin::text) FROM tasker.step_transitions WHERE to_state = 'complete'`).Scan(&completions, &transactions))
	require.Equal(t, tasks, completions)
	require.Equal(t, tasks, transactions, "each result was settled in its own transaction")
	require.Len(t, sbQueueBodies(t, b, dispatch.StepQueue(def.NamespaceName)), 2*tasks)

	_, err = b.pool.Exec(ctx, `DROP TRIGGER test_refuse_batches ON tasker.step_transitions`)
	require.NoError(t, err)
	drive(t, engine, b, func() bool { return countTasks(t, b, TaskComplete) == tasks })
	requireEachStepCompletedOnce(t, b, 4*tasks)
	requireDiamondValues(t, b, tasks)
}

// --- helpers ---

// sbEngine returns an engine reading up to batch results per round, logging
// to logs.
func sbEngine(t *testing.T, pool *pgxpool.Pool, id string, batch int, logs *syncBuffer) *Engine {
	t.Helper()
	return NewEngine(pool, Config{
		ProcessID: id, ResultBatchSize: batch, PollInterval: 20 * time.Millisecond, SweepInterval: 20 * time.Millisecond,
		Rand: func() float64 { return 0.5 }, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
}

// sbCreateTasks creates n tasks of def with the contexts {"even_number":
// 2}, 4, ... and returns their uuids in that order.
func sbCreateTasks(t *testing.T, engine *Engine, def template.Definition, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = createTask(t, engine, def, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1))).UUID
	}
	return ids
}

// sbRunAllSteps runs every step message waiting on the worker's queues,
// without processing any result.
func sbRunAllSteps(t *testing.T, b *bundle) {
	t.Helper()
	for {
		n, err := b.worker.runOnce(t.Context())
		require.NoError(t, err)
		if n == 0 {
			return
		}
	}
}

// sbQueueBodies returns the bodies of the messages on a queue, oldest first.
func sbQueueBodies(t *testing.T, b *bundle, queueName string) []json.RawMessage {
	t.Helper()
	rows, err := b.pool.Query(t.Context(), `SELECT message FROM pgmq.q_`+queueName+` ORDER BY msg_id`)
	require.NoError(t, err)
	var bodies []json.RawMessage
	for rows.Next() {
		var body json.RawMessage
		require.NoError(t, rows.Scan(&body))
		bodies = append(bodies, body)
	}
	require.NoError(t, rows.Err())
	return bodies
}

// sbStepName is the name of a step.
func sbStepName(t *testing.T, b *bundle, stepUUID uuid.UUID) string {
	t.Helper()
	step, err := b.queries.GetStep(t.Context(), b.pool, stepUUID)
	require.NoError(t, err)
	return step.Name
}

func sbGetTask(t *testing.T, engine *Engine, id uuid.UUID) *Task {
	t.Helper()
	task, err := engine.GetTask(t.Context(), id)
	require.NoError(t, err)
	return task
}

// sbEvenNumber is the task's even_number, as text.
func sbEvenNumber(t *testing.T, input *dispatch.StepInput) string {
	t.Helper()
	var v struct {
		EvenNumber json.Number `json:"even_number"`
	}
	require.NoError(t, json.Unmarshal(input.Task.Context, &v))
	return v.EvenNumber.String()
}
