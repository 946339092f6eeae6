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

// outcomeParams are the arguments of recordSQL that describe the outcome.
type outcomeParams struct {
	ToState  string
	Results  json.RawMessage
	Error    json.RawMessage
	StepUUID uuid.UUID
	WorkerID string
	Attempt  int32
	Reason   string
}

// recordOutcome runs recordSQL and reports whether the claim was still held
// (the outcome was stored, the result sent and the step message deleted).
func (e *Executor) recordOutcome(ctx context.Context, claim *Claim, params outcomeParams, outcome Outcome) (bool, error) {
	message, err := json.Marshal(ResultMessage{
		TaskUUID: claim.Step.TaskUUID,
		StepUUID: claim.Step.StepUUID,
		Attempt:  int(claim.Step.Attempts),
		Success:  outcome.Succeeded() && params.ToState == "enqueued_for_orchestration",
	})
	if err != nil {
		return false, err
	}
	var updated, notified int64
	err = e.pool.QueryRow(ctx, recordSQL(claim.Queue),
		params.ToState, params.Results, params.Error, params.StepUUID, params.WorkerID, params.Attempt,
		params.Reason, message, claim.MessageID,
	).Scan(&updated, &notified)
	if err != nil {
		return false, fmt.Errorf("storing outcome: %w", err)
	}
	return updated == 1, nil
}
