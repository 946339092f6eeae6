package orchestration

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

// The fast path of result processing: the successful results of one batch
// are settled together, in one transaction of a few set-based statements,
// instead of one transaction of about five statements per result. It does
// exactly what applyResult does for a success (complete the step, release
// its children, enqueue those that became ready, re-evaluate the task), for
// the common case only; everything else stays on applyResult.

// settleLockTasksSQL locks tasks, as LockTask does one, one after another
// in the order of $1 (task uuids): the lateral subquery cannot be merged
// into a join, so each task is locked by its own index lookup as the array
// is read. lockTasks passes them sorted, so that two orchestrators settling
// overlapping batches take the locks in the same order and cannot deadlock
// (every other path holds one task lock at a time).
const settleLockTasksSQL = `-- name: SettleLockTasks (orchestration/settle.go)
SELECT t.task_uuid, t.state, t.namespace_name, t.correlation_id
FROM unnest($1::uuid[]) WITH ORDINALITY AS i (task_uuid, pos)
CROSS JOIN LATERAL (
    SELECT t.task_uuid, t.state, t.namespace_name, t.correlation_id
    FROM tasker.tasks t WHERE t.task_uuid = i.task_uuid
    FOR NO KEY UPDATE
) t
ORDER BY i.pos`

// settleCompleteSQL completes the steps of a batch and releases their
// children, in one statement; the caller holds the locks of their tasks.
//
// completed: each step still in enqueued_for_orchestration, of the task the
// message names, for the attempt the message names, becomes complete (as
// ReleaseChildren does for one step, with the same transition). A step in
// any other state, of another attempt or of another task is left alone and
// its message goes to the per-message path.
//
// parents: a child may have several parents completed in the same batch
// (the two middle steps of a diamond). An UPDATE ... FROM a join updates
// each row once, with one joined row, so the completed parents are first
// counted per child, and the child's unmet_dependencies drops by that
// count. A pending child that reaches zero is enqueued in the same update,
// with the transition's reason naming its parent that came last in the
// batch, the one whose message the per-message path would have settled
// last.
//
// acked: the result messages whose step and attempt were completed are
// deleted, the duplicates in the batch included (the per-message path would
// find them settled already); the caller locked them (ReadLocked).
//
// sent: each enqueued child gets its StepMessage on its namespace's step
// queue, in the order of ready (pos, then name), and each queue that got
// one is notified once (at commit). The statement has one such part per
// step queue of the batch's tasks (settleCompleteSQLFor).
//
// It returns one row per completed step (ready false) and one per enqueued
// child (ready true), with pos the position in the input of the message
// that settled the step, or of the child's last parent.
//
// Every plan, custom or generic, made with or without statistics, must
// reach the rows through an index rather than a scan of the whole table,
// and the batch's steps one lookup each. input is materialized with a
// condition on pos that is always true but makes the planner expect one
// row (see claimSQL in package dispatch): completed is then a nested loop
// over input, each step found by its primary key. (With the step uuids as
// an ANY condition on workflow_steps instead, the planner read the steps
// first and re-ran unnest for each of them: quadratic in the batch.) The
// ANY conditions left repeat what the joins already say.
//
// $1 task uuids, $2 step uuids, $3 attempts (parallel arrays, one element
// per distinct step and attempt, in message order), $4 actor, $5 message
// ids, $6 their task uuids, $7 their step uuids, $8 their attempts
// (parallel arrays, one element per successful result message).
const settleCompleteSQL = `-- name: SettleComplete (orchestration/settle.go)
WITH input AS MATERIALIZED (
    SELECT i.task_uuid, i.step_uuid, i.attempt, i.pos
    FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) WITH ORDINALITY AS i (task_uuid, step_uuid, attempt, pos)
    WHERE i.pos BETWEEN 1 AND cardinality($2::uuid[])
), completed AS (
    UPDATE tasker.workflow_steps ws SET
        state = 'complete', next_retry_at = NULL, claimed_by = NULL, claim_expires_at = NULL,
        completed_at = now(), updated_at = now()
    FROM input i
    WHERE ws.step_uuid = i.step_uuid AND ws.task_uuid = i.task_uuid
      AND ws.state = 'enqueued_for_orchestration'
      AND ws.attempts = i.attempt AND ws.attempts <= ws.max_attempts
    RETURNING ws.step_uuid, ws.task_uuid, ws.name, ws.attempts, i.pos
), completion_recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, 'enqueued_for_orchestration', 'complete', attempts, $4::text, 'handler result stored'
    FROM completed
), parents AS (
    SELECT e.to_step_uuid, e.task_uuid, count(*)::integer AS done, max(c.pos) AS pos,
           (array_agg(c.name ORDER BY c.pos DESC))[1] AS last_parent
    FROM completed c
    JOIN tasker.workflow_step_edges e ON e.from_step_uuid = c.step_uuid AND e.task_uuid = c.task_uuid
    WHERE e.from_step_uuid = ANY($2::uuid[])
    GROUP BY e.to_step_uuid, e.task_uuid
), released AS (
    UPDATE tasker.workflow_steps s SET
        unmet_dependencies = s.unmet_dependencies - p.done,
        state = CASE WHEN s.unmet_dependencies = p.done AND s.state = 'pending' THEN 'enqueued' ELSE s.state END,
        enqueued_at = CASE WHEN s.unmet_dependencies = p.done AND s.state = 'pending' THEN now() ELSE s.enqueued_at END,
        updated_at = now()
    FROM parents p
    WHERE s.step_uuid = p.to_step_uuid AND s.task_uuid = p.task_uuid
      AND s.task_uuid = ANY($1::uuid[])
    RETURNING s.step_uuid, s.task_uuid, s.name, s.attempts, s.state, s.unmet_dependencies, p.pos, p.last_parent
), ready AS (
    SELECT step_uuid, task_uuid, name, attempts, pos, last_parent
    FROM released WHERE unmet_dependencies = 0 AND state = 'enqueued'
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, 'pending', 'enqueued', attempts, $4::text, 'parents complete after ' || last_parent
    FROM ready
), acked AS (
    DELETE FROM <results> AS m
    USING unnest($5::bigint[], $6::uuid[], $7::uuid[], $8::bigint[]) AS r (msg_id, task_uuid, step_uuid, attempt)
    JOIN completed c ON c.step_uuid = r.step_uuid AND c.task_uuid = r.task_uuid AND c.attempts = r.attempt
    -- Each message one lookup of the primary key: an id array as a second
    -- condition made each lookup walk the whole array, and a condition on a
    -- subquery alone let the plan scan the table.
    WHERE m.msg_id = r.msg_id
), messages AS MATERIALIZED (
    SELECT t.namespace_name, r.pos, r.name,
           jsonb_build_object('task_uuid', r.task_uuid, 'step_uuid', r.step_uuid, 'step_name', r.name,
                              'namespace', t.namespace_name, 'correlation_id', t.correlation_id) AS body
    FROM ready r JOIN tasker.tasks t ON t.task_uuid = r.task_uuid
)<sent>
SELECT false, c.task_uuid, c.step_uuid, c.name, c.attempts::bigint, c.pos FROM completed c
UNION ALL
SELECT true, r.task_uuid, r.step_uuid, r.name, r.attempts::bigint, r.pos FROM ready r
    CROSS JOIN (SELECT 0<notified> AS notified) n`

// settleStatements caches settleCompleteSQLFor's statements by their
// namespaces, joined by commas; settleStatementCount counts its entries.
// A batch's namespaces are few, but their combinations are not bounded: past
// maxSettleStatements the cache starts empty again.
var (
	settleStatements     sync.Map
	settleStatementCount atomic.Int64
)

// maxSettleStatements bounds settleStatements.
const maxSettleStatements = 256

// settleCompleteSQLFor returns settleCompleteSQL for a batch whose tasks
// are of namespaces (sorted, distinct, each a valid queue name's stem): a
// sent part per namespace's step queue, which inserts the messages of
// that namespace's ready steps, and its notification.
func settleCompleteSQLFor(namespaces []string) string {
	key := strings.Join(namespaces, ",")
	if s, ok := settleStatements.Load(key); ok {
		return s.(string) //nolint:forcetypeassert // only strings are stored
	}
	var sent, notified strings.Builder
	for i, ns := range namespaces {
		stepQueue := dispatch.StepQueue(ns)
		cte := fmt.Sprintf("sent_%d", i)
		fmt.Fprintf(&sent, `, %s AS (
    INSERT INTO %s (vt, message)
    SELECT clock_timestamp(), m.body FROM messages m WHERE m.namespace_name = '%s'
    ORDER BY m.pos, m.name
    RETURNING msg_id
)`, cte, queue.Table(stepQueue), ns)
		fmt.Fprintf(&notified, " + (SELECT count(pg_notify('%s', '%s')) FROM (SELECT FROM %s LIMIT 1) AS one)",
			queue.Channel(stepQueue), stepQueue, cte)
	}
	s := strings.NewReplacer(
		"<results>", queue.Table(dispatch.ResultsQueue), "<sent>", sent.String(), "<notified>", notified.String(),
	).Replace(settleCompleteSQL)
	if settleStatementCount.Add(1) > maxSettleStatements {
		settleStatements.Clear()
		settleStatementCount.Store(1)
	}
	settleStatements.Store(key, s)
	return s
}

// settleCountSQL counts the steps of several tasks by state, as
// CountTaskStepsByState does for one, each task through the index on
// (task_uuid, name) (the lateral subquery cannot become a hash join with a
// scan of the whole table). $1 task uuids.
const settleCountSQL = `-- name: SettleCount (orchestration/settle.go)
SELECT i.task_uuid, c.state, c.steps
FROM unnest($1::uuid[]) AS i (task_uuid)
CROSS JOIN LATERAL (
    SELECT ws.state, count(*)::integer AS steps FROM tasker.workflow_steps ws
    WHERE ws.task_uuid = i.task_uuid
    GROUP BY ws.state
) c`

// settleTransitionTasksSQL moves several tasks between states and records
// the transitions, as TransitionTask does for one; a task not in its from
// state is left alone (the caller holds the locks and counts the rows).
// input is planned as one row, as in settleCompleteSQL, so that each task
// is one index lookup.
// $1 task uuids, $2 from states, $3 to states, $4 whether the to state is
// terminal, $5 reasons (parallel arrays), $6 actor.
const settleTransitionTasksSQL = `-- name: SettleTransitionTasks (orchestration/settle.go)
WITH input AS MATERIALIZED (
    SELECT i.task_uuid, i.from_state, i.to_state, i.terminal, i.reason
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::boolean[], $5::text[]) WITH ORDINALITY
        AS i (task_uuid, from_state, to_state, terminal, reason, n)
    WHERE i.n BETWEEN 1 AND cardinality($1::uuid[])
), updated AS (
    UPDATE tasker.tasks t SET
        state = i.to_state,
        updated_at = now(),
        completed_at = CASE WHEN i.terminal THEN now() ELSE NULL END
    FROM input i
    WHERE t.task_uuid = i.task_uuid AND t.state = i.from_state
    RETURNING t.task_uuid, i.from_state, i.to_state, i.reason
)
INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, actor, reason)
SELECT task_uuid, from_state, to_state, $6::text, reason FROM updated`

// settleKey identifies what a success message asks for: a step's attempt
// of a task. Messages with the same key are duplicates of each other.
type settleKey struct {
	task, step uuid.UUID
	attempt    int
}

// lockedTask is what the fast path reads of a task it locked.
type lockedTask struct {
	state         TaskState
	namespace     string
	correlationID uuid.UUID
}

// settledStep is a step the fast path completed or enqueued.
type settledStep struct {
	task    uuid.UUID
	step    uuid.UUID
	name    string
	attempt int
	pos     int64
}

// taskOutcome is what the fast path did to one task's steps.
type taskOutcome struct {
	// lastCompleted is the step completed by the latest message of the
	// batch; its name gives the reason of a task transition.
	lastCompleted settledStep
	ready         []settledStep
}

// settleSuccesses settles the successful results among results in tx
// (see settleCompleteSQL) and returns the ids of the messages it settled:
// those whose step it completed, and their duplicates in the batch, which
// the per-message path would have found already settled. It deletes the
// settled messages (in settleCompleteSQL); the caller runs every other
// message through the per-message path. Only tasks in
// steps_in_process are settled here: for them, settling the batch's steps
// one by one would leave the task steps_in_process until the last one (a
// step waiting for the orchestrator is in flight), so one evaluation at
// the end records the same transitions. On error tx must be rolled back.
func (e *Engine) settleSuccesses(ctx context.Context, tx pgx.Tx, results []decodedResult) (map[int64]bool, error) {
	keys, tasks := successKeys(results)
	settled := map[int64]bool{}
	if len(keys) == 0 {
		return settled, nil
	}
	locked, err := e.lockTasks(ctx, tx, tasks)
	if err != nil {
		return nil, err
	}
	completed, ready, err := e.completeSteps(ctx, tx, keys, successMessages(results), locked)
	if err != nil || len(completed) == 0 {
		return settled, err
	}
	if err := e.evaluateTasks(ctx, tx, locked, outcomesByTask(completed, ready)); err != nil {
		return nil, err
	}
	done := make(map[settleKey]bool, len(completed))
	for _, s := range completed {
		done[settleKey{task: s.task, step: s.step, attempt: s.attempt}] = true
	}
	for _, r := range results {
		if key, ok := successKey(r); ok && done[key] {
			settled[r.msg.ID] = true
		}
	}
	return settled, nil
}

// successKey is the key of a result that decoded and reports a success.
func successKey(r decodedResult) (settleKey, bool) {
	if r.decodeErr != nil || !r.result.Success {
		return settleKey{}, false
	}
	return settleKey{task: r.result.TaskUUID, step: r.result.StepUUID, attempt: r.result.Attempt}, true
}

// resultMessages are the ids and keys of result messages, as parallel
// arrays (settleCompleteSQL's $5 to $8).
type resultMessages struct {
	ids          []int64
	tasks, steps []uuid.UUID
	attempts     []int64
}

// successMessages returns the messages of results that report a success,
// duplicates included.
func successMessages(results []decodedResult) resultMessages {
	var m resultMessages
	for _, r := range results {
		if key, ok := successKey(r); ok {
			m.ids = append(m.ids, r.msg.ID)
			m.tasks, m.steps = append(m.tasks, key.task), append(m.steps, key.step)
			m.attempts = append(m.attempts, int64(key.attempt))
		}
	}
	return m
}

// successKeys returns the distinct keys of the successful results, in
// message order, and their distinct tasks.
func successKeys(results []decodedResult) ([]settleKey, []uuid.UUID) {
	var (
		keys  []settleKey
		tasks []uuid.UUID
		seen  = map[settleKey]bool{}
		known = map[uuid.UUID]bool{}
	)
	for _, r := range results {
		key, ok := successKey(r)
		if !ok || seen[key] {
			continue
		}
		seen[key] = true
		keys = append(keys, key)
		if !known[key.task] {
			known[key.task] = true
			tasks = append(tasks, key.task)
		}
	}
	return keys, tasks
}

// lockTasks locks the tasks in task_uuid order (see settleLockTasksSQL) and
// returns those that exist.
func (e *Engine) lockTasks(ctx context.Context, tx pgx.Tx, tasks []uuid.UUID) (map[uuid.UUID]lockedTask, error) {
	tasks = slices.Clone(tasks)
	slices.SortFunc(tasks, compareUUIDs)
	rows, err := tx.Query(ctx, settleLockTasksSQL, tasks)
	if err != nil {
		return nil, fmt.Errorf("locking %d tasks: %w", len(tasks), err)
	}
	locked := make(map[uuid.UUID]lockedTask, len(tasks))
	var (
		id    uuid.UUID
		state string
		task  lockedTask
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &state, &task.namespace, &task.correlationID}, func() error {
		task.state = TaskState(state)
		locked[id] = task
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("locking %d tasks: %w", len(tasks), err)
	}
	return locked, nil
}

// completeSteps runs settleCompleteSQL for the keys whose task is locked
// and in steps_in_process, which also deletes the messages of msgs whose
// step it completed and sends the messages of the children it enqueued,
// and returns the steps it completed and those children.
func (e *Engine) completeSteps(ctx context.Context, tx pgx.Tx, keys []settleKey, msgs resultMessages, locked map[uuid.UUID]lockedTask) (completed, ready []settledStep, err error) {
	var (
		taskIDs, stepIDs []uuid.UUID
		attempts         []int64
		namespaces       []string
	)
	for _, k := range keys {
		if task, ok := locked[k.task]; ok && task.state == TaskStepsInProcess {
			taskIDs = append(taskIDs, k.task)
			stepIDs = append(stepIDs, k.step)
			attempts = append(attempts, int64(k.attempt))
			namespaces = append(namespaces, task.namespace)
		}
	}
	if len(stepIDs) == 0 {
		return nil, nil, nil
	}
	slices.Sort(namespaces)
	sql := settleCompleteSQLFor(slices.Compact(namespaces))
	rows, err := tx.Query(ctx, sql, taskIDs, stepIDs, attempts, e.cfg.ProcessID, msgs.ids, msgs.tasks, msgs.steps, msgs.attempts)
	if err != nil {
		return nil, nil, fmt.Errorf("completing %d steps: %w", len(stepIDs), err)
	}
	var (
		isReady bool
		s       settledStep
		attempt int64
	)
	_, err = pgx.ForEachRow(rows, []any{&isReady, &s.task, &s.step, &s.name, &attempt, &s.pos}, func() error {
		s.attempt = int(attempt)
		if isReady {
			ready = append(ready, s)
		} else {
			completed = append(completed, s)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("completing %d steps: %w", len(stepIDs), err)
	}
	byPos := func(a, b settledStep) int {
		return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.name, b.name))
	}
	slices.SortFunc(completed, byPos)
	slices.SortFunc(ready, byPos)
	return completed, ready, nil
}

// outcomesByTask groups what completeSteps did by task; completed and
// ready are in batch order.
func outcomesByTask(completed, ready []settledStep) map[uuid.UUID]*taskOutcome {
	outcomes := make(map[uuid.UUID]*taskOutcome, len(completed))
	for _, s := range completed {
		o, ok := outcomes[s.task]
		if !ok {
			o = &taskOutcome{}
			outcomes[s.task] = o
		}
		o.lastCompleted = s
	}
	for _, s := range ready {
		if o, ok := outcomes[s.task]; ok {
			o.ready = append(o.ready, s)
		}
	}
	return outcomes
}

// evaluateTasks does evaluateTask for each task whose steps the batch
// completed, as releaseChildren would: a task that got children enqueued
// stays steps_in_process and is not counted; the others are counted in one
// statement, and those whose state changes are moved in one statement, with
// the reason naming the step completed last.
func (e *Engine) evaluateTasks(ctx context.Context, tx pgx.Tx, locked map[uuid.UUID]lockedTask, outcomes map[uuid.UUID]*taskOutcome) error {
	var count []uuid.UUID
	for id, o := range outcomes {
		if len(o.ready) == 0 {
			count = append(count, id)
		}
	}
	if len(count) == 0 {
		return nil
	}
	slices.SortFunc(count, compareUUIDs)
	rows, err := tx.Query(ctx, settleCountSQL, count)
	if err != nil {
		return fmt.Errorf("counting step states of %d tasks: %w", len(count), err)
	}
	counts := make(map[uuid.UUID]map[StepState]int, len(count))
	var (
		id    uuid.UUID
		state string
		n     int32
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &state, &n}, func() error {
		if counts[id] == nil {
			counts[id] = map[StepState]int{}
		}
		counts[id][StepState(state)] = int(n)
		return nil
	})
	if err != nil {
		return fmt.Errorf("counting step states of %d tasks: %w", len(count), err)
	}
	var (
		ids                 []uuid.UUID
		froms, tos, reasons []string
		terminal            []bool
	)
	for _, id := range count {
		current := locked[id].state
		next := nextTaskState(counts[id])
		if next == current {
			continue
		}
		ids = append(ids, id)
		froms = append(froms, string(current))
		tos = append(tos, string(next))
		terminal = append(terminal, next.Terminal())
		reasons = append(reasons, "step "+outcomes[id].lastCompleted.name+" complete")
	}
	if len(ids) == 0 {
		return nil
	}
	tag, err := tx.Exec(ctx, settleTransitionTasksSQL, ids, froms, tos, terminal, reasons, e.cfg.ProcessID)
	if err != nil {
		return fmt.Errorf("moving %d tasks to their next state: %w", len(ids), err)
	}
	if int(tag.RowsAffected()) != len(ids) {
		return fmt.Errorf("moving %d tasks to their next state: only %d were still in the state they were locked in", len(ids), tag.RowsAffected())
	}
	return nil
}

// compareUUIDs orders UUIDs as PostgreSQL does: byte by byte.
func compareUUIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }
