package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/queue"
)

// claimSQL claims a batch of steps in one statement and reads, for each
// claimed step, what its handler needs. It is ClaimAndLoadStep
// (internal/dbsqlc/dispatch.sql) for many steps at once, with the same
// conditions and the same transitions:
//
//   - a step is claimed when it belongs to the task its message names and
//     is enqueued, or in progress under an expired claim with attempts left;
//   - the steps are locked in step_uuid order, skipping those that another
//     transaction has locked: the batch never waits for a lock, so it cannot
//     deadlock with another batch, nor with the orchestrator, which locks
//     several steps of a task in its own order. A skipped step is claimed on
//     its own afterwards (see ClaimBatch), which waits for the lock as
//     ClaimAndLoadStep always did;
//   - every ancestor walk is limited to the batch's tasks (edges by task,
//     then steps by task and primary key): the planner cannot estimate a
//     recursive CTE and would otherwise pick plans that read whole tables;
//   - the ancestors' results are gathered once, into one JSON object keyed
//     by claimed step, which each claimed row looks up: a subquery per
//     claimed row filtering all the batch's ancestors was quadratic in the
//     batch.
//
// pgx prepares the statement, and PostgreSQL soon runs it with a generic
// plan, made once per connection, often while the tables are still small.
// For an array parameter that plan assumes ten elements, and ten index
// lookups cost more than reading a small table whole, a plan that stays
// when the table has grown. wanted's condition on n, always true, makes
// the planner expect one element, as in ClaimAndLoadStep's plan: every
// table is then read through its indexes, whatever its size.
//
// A step that is not claimable (or was skipped) is left alone and has no
// row.
//
// $1 step_uuids, $2 task_uuids (pairwise, without duplicate pairs),
// $3 worker_id, $4 lease margin in seconds. The columns are those of
// dbsqlc.ClaimAndLoadStepRow, in its order.
const claimSQL = `WITH RECURSIVE wanted AS (
    SELECT w.step_uuid, w.task_uuid
    FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS w (step_uuid, task_uuid, n)
    WHERE w.n BETWEEN 1 AND cardinality($1::uuid[])
), current_steps AS MATERIALIZED (
    SELECT ws.step_uuid, ws.state AS from_state
    FROM wanted w JOIN tasker.workflow_steps ws ON ws.step_uuid = w.step_uuid
    -- Not "=": the step is found by its primary key, never by its task.
    WHERE ws.task_uuid IS NOT DISTINCT FROM w.task_uuid
      AND (ws.state = 'enqueued'
           OR (ws.state = 'in_progress' AND ws.claim_expires_at < now() AND ws.attempts < ws.max_attempts))
    ORDER BY ws.step_uuid
    FOR NO KEY UPDATE OF ws SKIP LOCKED
), claimed AS (
    UPDATE tasker.workflow_steps s SET
        state = 'in_progress',
        attempts = s.attempts + 1,
        claimed_by = $3::text,
        claim_expires_at = now() + make_interval(secs => s.timeout_seconds + $4::double precision),
        started_at = now(),
        updated_at = now()
    FROM current_steps c
    WHERE s.step_uuid = c.step_uuid
    RETURNING s.step_uuid, s.task_uuid, s.name, s.attempts, s.max_attempts, s.handler_callable,
        s.handler_initialization, s.retryable, s.backoff, s.backoff_base_ms, s.max_backoff_ms,
        s.jitter_percent, s.timeout_seconds, s.claim_expires_at, c.from_state
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, from_state, 'in_progress', attempts, $3::text,
           CASE WHEN from_state = 'in_progress' THEN 'claimed again after the previous claim expired'
                ELSE 'claimed' END
    FROM claimed
    ORDER BY step_uuid
), edges AS MATERIALIZED (
    SELECT e.from_step_uuid, e.to_step_uuid
    FROM (SELECT DISTINCT task_uuid FROM wanted) w
    JOIN tasker.workflow_step_edges e ON e.task_uuid = w.task_uuid
), ancestors (claimed_step, step_uuid) AS (
    SELECT e.to_step_uuid, e.from_step_uuid FROM edges e JOIN wanted w ON e.to_step_uuid = w.step_uuid
    UNION
    SELECT a.claimed_step, e.from_step_uuid FROM edges e
    JOIN ancestors a ON e.to_step_uuid = a.step_uuid
), ancestor_results AS (
    SELECT jsonb_object_agg(r.claimed_step::text, r.results) AS by_step
    FROM (
        SELECT a.claimed_step, jsonb_object_agg(s.name, s.results) AS results
        FROM ancestors a
        JOIN wanted w ON w.step_uuid = a.claimed_step
        JOIN tasker.workflow_steps s ON s.step_uuid = a.step_uuid AND s.task_uuid = w.task_uuid
        GROUP BY a.claimed_step
    ) r
)
SELECT c.step_uuid, c.task_uuid, c.name, c.attempts, c.max_attempts, c.handler_callable, c.handler_initialization,
       c.retryable, c.backoff, c.backoff_base_ms, c.max_backoff_ms, c.jitter_percent, c.timeout_seconds,
       c.claim_expires_at::timestamptz AS claim_expires_at, c.from_state,
       t.namespace_name, t.name AS task_name, t.version, t.context, t.correlation_id, t.state AS task_state,
       coalesce((SELECT r.by_step FROM ancestor_results r) -> c.step_uuid::text, '{}'::jsonb) AS ancestor_results
FROM claimed c JOIN tasker.tasks t ON t.task_uuid = c.task_uuid
ORDER BY c.step_uuid`

// ClaimResult is what ClaimBatch did with one message: the claim of its
// step, or the error Claim would have returned for it.
type ClaimResult struct {
	Claim *Claim
	Err   error
}

// stepKey names a step as a message does: the step and the task it says
// the step belongs to.
type stepKey struct {
	step, task uuid.UUID
}

// ClaimBatch claims the steps that msgs (read together from queueName)
// point at, in one statement (claimSQL; ClaimAndLoadStep for a single
// step), and returns one result per message, in the order of msgs. Each result is what Claim returns for that
// message alone: a claim, or an error wrapping ErrMalformed (the message was
// archived) or ErrNotClaimable (the message was deleted or hidden), or
// another error. Only the common path is batched: a message that does not
// decode is archived at once, and a message whose step the statement did
// not claim (the step cannot run, or another transaction had it locked) is
// handled as Claim always did, one by one: claimed on its own
// (ClaimAndLoadStep) or else deleted or hidden. A second message for a step
// that a first message claimed finds the step held by this worker, and is
// hidden until the lease ends. If the batch statement fails, each message
// is claimed on its own.
func (e *Executor) ClaimBatch(ctx context.Context, queueName string, msgs []queue.Message) []ClaimResult {
	results := make([]ClaimResult, len(msgs))
	decoded := make([]StepMessage, len(msgs))
	// first maps each step, as a message names it, to the first message
	// that names it: that message's claim is the step's claim.
	first := make(map[stepKey]int, len(msgs))
	var steps, tasks []pgtype.UUID
	for i, msg := range msgs {
		stepMsg, err := DecodeStepMessage(msg.Body)
		if err != nil {
			results[i].Err = e.deadLetter(ctx, queueName, msg, err.Error())
			continue
		}
		decoded[i] = stepMsg
		key := stepKey{step: stepMsg.StepUUID, task: stepMsg.TaskUUID}
		if _, seen := first[key]; seen {
			continue
		}
		first[key] = i
		steps = append(steps, pgtype.UUID{Bytes: key.step, Valid: true})
		tasks = append(tasks, pgtype.UUID{Bytes: key.task, Valid: true})
	}
	switch {
	case len(steps) == 1:
		// One step: ClaimAndLoadStep, the statement made for it.
		for _, i := range first {
			results[i] = e.claimOne(ctx, queueName, msgs[i], decoded[i])
		}
	case len(steps) > 1:
		e.claimMany(ctx, queueName, msgs, decoded, first, steps, tasks, results)
	}
	for i, msg := range msgs {
		if results[i].Claim == nil && results[i].Err == nil {
			results[i].Err = e.dropUnclaimable(ctx, queueName, msg, decoded[i])
		}
	}
	return results
}

// claimMany claims the steps named by first (the message index of each
// step, whose step and task are steps and tasks) in one statement, and
// sets the results of those messages: a claim, or, for a step the
// statement did not claim, what claimOne makes of it.
func (e *Executor) claimMany(ctx context.Context, queueName string, msgs []queue.Message, decoded []StepMessage,
	first map[stepKey]int, steps, tasks []pgtype.UUID, results []ClaimResult,
) {
	rows, err := e.claimSteps(ctx, steps, tasks)
	if err != nil {
		// The batch failed as a whole: claim each step on its own, so that
		// whatever failed it fails only its own message.
		for _, i := range first {
			if ctx.Err() != nil {
				results[i].Err = fmt.Errorf("dispatch: claiming step %s: %w", decoded[i].StepUUID, err)
				continue
			}
			results[i] = e.claimOne(ctx, queueName, msgs[i], decoded[i])
		}
		return
	}
	claimed := make(map[int]bool, len(rows))
	for _, row := range rows {
		i := first[stepKey{step: row.StepUUID, task: row.TaskUUID}]
		results[i] = e.newClaim(queueName, msgs[i], decoded[i], row)
		claimed[i] = true
	}
	for _, i := range first {
		if !claimed[i] {
			// Not claimable, or locked by another transaction: claimOne
			// waits for the lock and tells which.
			results[i] = e.claimOne(ctx, queueName, msgs[i], decoded[i])
		}
	}
}

// claimSteps runs claimSQL.
func (e *Executor) claimSteps(ctx context.Context, steps, tasks []pgtype.UUID) ([]dbsqlc.ClaimAndLoadStepRow, error) {
	rows, err := e.pool.Query(ctx, claimSQL, steps, tasks, e.cfg.WorkerID, e.cfg.LeaseMargin.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (dbsqlc.ClaimAndLoadStepRow, error) {
		var i dbsqlc.ClaimAndLoadStepRow
		err := row.Scan(
			&i.StepUUID, &i.TaskUUID, &i.Name, &i.Attempts, &i.MaxAttempts, &i.HandlerCallable,
			&i.HandlerInitialization, &i.Retryable, &i.Backoff, &i.BackoffBaseMs, &i.MaxBackoffMs,
			&i.JitterPercent, &i.TimeoutSeconds, &i.ClaimExpiresAt, &i.FromState,
			&i.NamespaceName, &i.TaskName, &i.Version, &i.Context, &i.CorrelationID, &i.TaskState,
			&i.AncestorResults,
		)
		return i, err
	})
}

// claimOne claims one message's step with ClaimAndLoadStep, which waits
// for a lock on the step: the path of a single message, of a step the batch
// did not claim, and of a batch that failed as a whole. A step it does not
// claim is left for the caller (a result with neither claim nor error).
func (e *Executor) claimOne(ctx context.Context, queueName string, msg queue.Message, stepMsg StepMessage) ClaimResult {
	row, err := e.queries.ClaimAndLoadStep(ctx, e.pool, dbsqlc.ClaimAndLoadStepParams{
		StepUUID:           stepMsg.StepUUID,
		TaskUUID:           stepMsg.TaskUUID,
		WorkerID:           e.cfg.WorkerID,
		LeaseMarginSeconds: e.cfg.LeaseMargin.Seconds(),
	})
	switch {
	case err == nil:
		return e.newClaim(queueName, msg, stepMsg, row)
	case errors.Is(err, pgx.ErrNoRows):
		return ClaimResult{}
	default:
		return ClaimResult{Err: fmt.Errorf("dispatch: claiming step %s: %w", stepMsg.StepUUID, err)}
	}
}

// newClaim builds the claim of a claimed step's row.
func (e *Executor) newClaim(queueName string, msg queue.Message, stepMsg StepMessage, row dbsqlc.ClaimAndLoadStepRow) ClaimResult {
	input, err := stepInput(row)
	if err != nil {
		return ClaimResult{Err: err}
	}
	return ClaimResult{Claim: &Claim{Queue: queueName, MessageID: msg.ID, Message: stepMsg, Step: row, Input: input}}
}
