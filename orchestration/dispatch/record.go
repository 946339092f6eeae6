package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/orchestration/queue"
)

// recordStatements caches, per step queue, the statement that records an
// outcome (see recordSQL).
var recordStatements sync.Map

// recordSQL returns the one statement that settles a worker's attempt: it
// stores the outcome (when the worker still holds the claim), records the
// transition, sends the result message to the orchestrator with its NOTIFY,
// and deletes the step message from stepQueue. Everything after the update
// depends on it, so a lost claim changes nothing; the statement returns how
// many steps it updated (0 or 1). One statement is one round trip, and is
// atomic without an explicit transaction.
//
// $1 to_state, $2 results, $3 error, $4 step_uuid, $5 worker_id, $6 attempt,
// $7 reason, $8 result message, $9 step message id.
func recordSQL(stepQueue string) string {
	if s, ok := recordStatements.Load(stepQueue); ok {
		return s.(string) //nolint:forcetypeassert // only strings are stored
	}
	s := `WITH updated AS (
    UPDATE tasker.workflow_steps ws SET
        state = $1::text, results = $2::jsonb, error = $3::jsonb,
        claim_expires_at = NULL, updated_at = now()
    WHERE ws.step_uuid = $4::uuid AND ws.state = 'in_progress' AND ws.claimed_by = $5::text
      AND ws.attempts = $6::integer
    RETURNING ws.step_uuid, ws.task_uuid, ws.attempts
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, 'in_progress', $1::text, attempts, $5::text, $7::text FROM updated
), sent AS (
    INSERT INTO ` + queue.Table(ResultsQueue) + ` (vt, message)
    SELECT clock_timestamp(), $8::jsonb FROM updated
    RETURNING msg_id
), acked AS (
    DELETE FROM ` + queue.Table(stepQueue) + ` AS m
    WHERE m.msg_id = $9::bigint AND EXISTS (SELECT FROM updated)
)
SELECT (SELECT count(*) FROM updated),
       (SELECT count(pg_notify('` + queue.Channel(ResultsQueue) + `', '` + ResultsQueue + `')) FROM sent)`
	actual, _ := recordStatements.LoadOrStore(stepQueue, s)
	return actual.(string) //nolint:forcetypeassert // only strings are stored
}

// recordBatchStatements caches, per step queue, recordBatchSQL's statement.
var recordBatchStatements sync.Map

// recordBatchSQL returns the statement that settles many attempts of steps
// of stepQueue at once, as recordSQL does one: for each outcome whose claim
// this worker still holds, it stores the outcome, records the transition,
// sends the result message and deletes the step message; then it sends one
// NOTIFY. The held claims are locked first, in step_uuid order and skipping
// any that another transaction has locked: the batch never waits for a
// lock, so it cannot deadlock with another batch, nor with the
// orchestrator, which locks several steps of a task in its own order. An
// outcome whose claim ended, or whose step was skipped, changes nothing.
// The statement returns the step and attempt of every outcome it stored;
// the caller stores the others one by one (recordSQL, which waits for the
// lock), which tells a lost claim from a locked step. input's condition on
// n, always true, keeps the generic plan on the indexes of the tables
// however small they were when it was made (see claimSQL). held carries
// the outcomes, so that updated is one loop over held with one lookup per
// step; joining input again made the planner scan held once per step.
//
// $1 step_uuids, $2 attempts, $3 to_states, $4 results, $5 errors,
// $6 reasons, $7 result messages, $8 step message ids (one element per
// outcome, no step twice), $9 worker_id.
func recordBatchSQL(stepQueue string) string {
	if s, ok := recordBatchStatements.Load(stepQueue); ok {
		return s.(string) //nolint:forcetypeassert // only strings are stored
	}
	s := `WITH input AS MATERIALIZED (
    SELECT i.step_uuid, i.attempt, i.to_state, i.results, i.error, i.reason, i.message, i.msg_id
    FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::jsonb[], $5::jsonb[], $6::text[], $7::jsonb[], $8::bigint[])
        WITH ORDINALITY AS i (step_uuid, attempt, to_state, results, error, reason, message, msg_id, n)
    WHERE i.n BETWEEN 1 AND cardinality($1::uuid[])
), held AS MATERIALIZED (
    SELECT ws.step_uuid, i.attempt, i.to_state, i.results, i.error, i.reason, i.message, i.msg_id
    FROM input i JOIN tasker.workflow_steps ws ON ws.step_uuid = i.step_uuid
    WHERE ws.state = 'in_progress' AND ws.claimed_by = $9::text AND ws.attempts = i.attempt
    ORDER BY ws.step_uuid
    FOR NO KEY UPDATE OF ws SKIP LOCKED
), updated AS (
    UPDATE tasker.workflow_steps ws SET
        state = h.to_state, results = h.results, error = h.error,
        claim_expires_at = NULL, updated_at = now()
    FROM held h
    WHERE ws.step_uuid = h.step_uuid AND ws.state = 'in_progress' AND ws.claimed_by = $9::text
      AND ws.attempts = h.attempt
    RETURNING ws.step_uuid, ws.task_uuid, ws.attempts, h.to_state, h.reason, h.message, h.msg_id
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, 'in_progress', to_state, attempts, $9::text, reason FROM updated
    ORDER BY step_uuid
), sent AS (
    INSERT INTO ` + queue.Table(ResultsQueue) + ` (vt, message)
    SELECT clock_timestamp(), message FROM updated ORDER BY step_uuid
    RETURNING msg_id
), acked AS (
    DELETE FROM ` + queue.Table(stepQueue) + ` AS m USING updated u
    WHERE m.msg_id = u.msg_id
)
SELECT coalesce(array_agg(u.step_uuid), '{}')::uuid[], coalesce(array_agg(u.attempts), '{}')::integer[],
       (SELECT count(pg_notify('` + queue.Channel(ResultsQueue) + `', '` + ResultsQueue + `'))
        FROM (SELECT FROM sent LIMIT 1) AS one)
FROM updated u`
	actual, _ := recordBatchStatements.LoadOrStore(stepQueue, s)
	return actual.(string) //nolint:forcetypeassert // only strings are stored
}

// outcomeParams are the arguments of recordSQL (and of one element of
// recordBatchSQL's arrays) that describe the outcome.
type outcomeParams struct {
	ToState  string
	Results  json.RawMessage
	Error    json.RawMessage
	StepUUID uuid.UUID
	WorkerID string
	Attempt  int32
	Reason   string
	// Message is the ResultMessage to send.
	Message json.RawMessage
}

// recordOutcome runs recordSQL for one outcome and reports whether the
// claim was still held (the outcome was stored, the result sent and the
// step message deleted). It is the path of an outcome whose batch failed.
func (e *Executor) recordOutcome(ctx context.Context, claim *Claim, params outcomeParams) (bool, error) {
	var updated, notified int64
	err := e.pool.QueryRow(ctx, recordSQL(claim.Queue),
		params.ToState, params.Results, params.Error, params.StepUUID, params.WorkerID, params.Attempt,
		params.Reason, params.Message, claim.MessageID,
	).Scan(&updated, &notified)
	if err != nil {
		return false, fmt.Errorf("storing outcome: %w", err)
	}
	return updated == 1, nil
}
