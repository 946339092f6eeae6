-- Workflow step state changes. Each statement that changes a step's state
-- also records the transition, in the same statement.

-- name: EnqueueDueRetrySteps :many
-- Marks the task's steps whose retry time has come as enqueued.
WITH due AS (
    UPDATE tasker.workflow_steps ws SET
        state = 'enqueued', enqueued_at = now(), next_retry_at = NULL, updated_at = now()
    WHERE ws.task_uuid = @task_uuid AND ws.state = 'waiting_for_retry' AND ws.next_retry_at <= now()
    RETURNING ws.step_uuid, ws.task_uuid, ws.name, ws.attempts
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, 'waiting_for_retry', 'enqueued', attempts, @actor, 'retry delay elapsed' FROM due
)
SELECT step_uuid, name FROM due;

-- name: TransitionStep :execrows
-- Moves one step from from_state to to_state, clearing its claim, and
-- records the transition. No row is affected when the step is not in
-- from_state. next_retry_at is set retry_delay_ms from now for
-- waiting_for_retry and cleared otherwise; completed_at is set for the
-- terminal states.
WITH updated AS (
    UPDATE tasker.workflow_steps ws SET
        state = @to_state::text,
        next_retry_at = CASE WHEN @to_state::text = 'waiting_for_retry'
                             THEN now() + (sqlc.arg(retry_delay_ms)::bigint * interval '1 millisecond')
                             ELSE NULL END,
        claimed_by = NULL,
        claim_expires_at = NULL,
        enqueued_at = CASE WHEN @to_state::text = 'enqueued' THEN now() ELSE ws.enqueued_at END,
        completed_at = CASE WHEN @to_state::text IN ('complete', 'error', 'cancelled', 'resolved_manually')
                            THEN now() ELSE NULL END,
        updated_at = now()
    WHERE ws.step_uuid = @step_uuid AND ws.state = @from_state::text
    RETURNING ws.step_uuid, ws.task_uuid, ws.attempts
)
INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
SELECT step_uuid, task_uuid, @from_state::text, @to_state::text, attempts, @actor, @reason FROM updated;

-- name: SetStepError :exec
-- Replaces the recorded error of a step (e.g. to say that its retries ran out).
UPDATE tasker.workflow_steps SET error = @error WHERE step_uuid = @step_uuid;

-- name: SetStepResultsResolved :exec
-- Stores the result given by a person who resolved a step by hand.
UPDATE tasker.workflow_steps SET results = @results WHERE step_uuid = @step_uuid;

-- name: ResetStepAttempts :exec
-- A manual retry gives the step its whole retry budget again.
UPDATE tasker.workflow_steps SET attempts = 0, error = NULL WHERE step_uuid = @step_uuid;

-- name: ReleaseChildren :one
-- Tells the children of a completed (or resolved) step that one more parent
-- is done, and enqueues, in the same update, the pending children for which
-- it was the last one (recording their transition). It returns the children
-- it enqueued; the caller sends their queue messages in the same
-- transaction. One update per child, where decrementing and then enqueuing
-- would write each ready child twice.
--
-- With complete, the same statement first moves the step itself from
-- enqueued_for_orchestration to complete (recording why), and releases the
-- children only if it did; completed says whether it did (always 0
-- without complete).
WITH completed AS (
    UPDATE tasker.workflow_steps ws SET
        state = 'complete', next_retry_at = NULL, claimed_by = NULL, claim_expires_at = NULL,
        completed_at = now(), updated_at = now()
    WHERE @complete::boolean AND ws.step_uuid = @step_uuid AND ws.state = 'enqueued_for_orchestration'
    RETURNING ws.step_uuid, ws.task_uuid, ws.attempts
), completion_recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, 'enqueued_for_orchestration', 'complete', attempts, @actor, @complete_reason::text
    FROM completed
), released AS (
    UPDATE tasker.workflow_steps s SET
        unmet_dependencies = s.unmet_dependencies - 1,
        state = CASE WHEN s.unmet_dependencies = 1 AND s.state = 'pending' THEN 'enqueued' ELSE s.state END,
        enqueued_at = CASE WHEN s.unmet_dependencies = 1 AND s.state = 'pending' THEN now() ELSE s.enqueued_at END,
        updated_at = now()
    FROM tasker.workflow_step_edges e
    -- Limited to the task on both sides, so that every plan, including a
    -- generic one made while the tables were small, reads only its rows.
    WHERE e.from_step_uuid = @step_uuid AND e.task_uuid = @task_uuid
      AND s.step_uuid = e.to_step_uuid AND s.task_uuid = @task_uuid
      AND (NOT @complete::boolean OR EXISTS (SELECT FROM completed))
    RETURNING s.step_uuid, s.task_uuid, s.name, s.attempts, s.state, s.unmet_dependencies
), ready AS (
    SELECT * FROM released WHERE unmet_dependencies = 0 AND state = 'enqueued'
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, 'pending', 'enqueued', attempts, @actor, @reason FROM ready
)
SELECT (SELECT count(*) FROM completed)::integer AS completed,
    coalesce((SELECT array_agg(step_uuid ORDER BY name) FROM ready), '{}')::uuid[] AS ready_uuids,
    coalesce((SELECT array_agg(name ORDER BY name) FROM ready), '{}')::text[] AS ready_names;

-- name: GetStep :one
SELECT * FROM tasker.workflow_steps WHERE step_uuid = @step_uuid;

-- name: GetStepByName :one
SELECT * FROM tasker.workflow_steps WHERE task_uuid = @task_uuid AND name = @name;

-- name: ListTaskSteps :many
SELECT * FROM tasker.workflow_steps WHERE task_uuid = @task_uuid ORDER BY position;

-- name: ListStepTransitions :many
SELECT * FROM tasker.step_transitions WHERE task_uuid = @task_uuid ORDER BY id;

-- name: ListStepParents :many
SELECT p.step_uuid, p.name, p.state
FROM tasker.workflow_step_edges e
JOIN tasker.workflow_steps p ON p.step_uuid = e.from_step_uuid
WHERE e.task_uuid = @task_uuid AND e.to_step_uuid = @step_uuid;

-- name: CancelOpenSteps :many
-- Cancels every step of the task that has not reached a terminal state.
WITH open_steps AS (
    SELECT ws.step_uuid, ws.state AS from_state FROM tasker.workflow_steps ws
    WHERE ws.task_uuid = @task_uuid
      AND ws.state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
    FOR NO KEY UPDATE
), cancelled AS (
    UPDATE tasker.workflow_steps s SET
        state = 'cancelled', claimed_by = NULL, claim_expires_at = NULL, next_retry_at = NULL,
        completed_at = now(), updated_at = now()
    FROM open_steps o
    WHERE s.step_uuid = o.step_uuid
    RETURNING s.step_uuid, s.task_uuid, s.attempts, o.from_state
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, from_state, 'cancelled', attempts, @actor, @reason FROM cancelled
)
SELECT step_uuid, from_state FROM cancelled;

-- name: ListDueRetryTasks :many
-- Tasks that have at least one step whose retry time has come.
SELECT DISTINCT task_uuid FROM tasker.workflow_steps
WHERE state = 'waiting_for_retry' AND next_retry_at <= now()
LIMIT @max_tasks;

-- name: ListExpiredClaims :many
-- Steps whose worker's lease ran out more than the grace period ago: the
-- worker died, and its message was not picked up again.
SELECT step_uuid, task_uuid FROM tasker.workflow_steps
WHERE state = 'in_progress' AND claim_expires_at < now() - make_interval(secs => @grace_seconds::double precision)
ORDER BY claim_expires_at
LIMIT @max_steps;

-- name: InsertDeadLetter :exec
INSERT INTO tasker.dead_letters (queue_name, msg_id, message, reason, actor)
VALUES (@queue_name, @msg_id, @message, @reason, @actor);

-- name: ListDeadLetters :many
SELECT * FROM tasker.dead_letters WHERE queue_name = @queue_name ORDER BY id;

-- name: RequeueExpiredClaim :one
-- Puts a step whose worker's lease expired more than grace ago back on the
-- queue, if it has attempts left. No row when the step moved on meanwhile.
WITH expired AS (
    UPDATE tasker.workflow_steps ws SET
        state = 'enqueued', claimed_by = NULL, claim_expires_at = NULL,
        enqueued_at = now(), updated_at = now()
    WHERE ws.step_uuid = @step_uuid AND ws.state = 'in_progress'
      AND ws.claim_expires_at < now() - make_interval(secs => @grace_seconds::double precision)
      AND ws.attempts < ws.max_attempts
    RETURNING ws.step_uuid, ws.task_uuid, ws.name, ws.attempts, ws.claimed_by
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, 'in_progress', 'enqueued', attempts, @actor,
           'claim lease expired; worker presumed dead' FROM expired
)
SELECT step_uuid, name FROM expired;

-- name: FailExpiredClaim :execrows
-- Fails a step whose worker's lease expired on its last attempt.
WITH expired AS (
    UPDATE tasker.workflow_steps ws SET
        state = 'error', error = @error, claimed_by = NULL, claim_expires_at = NULL,
        completed_at = now(), updated_at = now()
    WHERE ws.step_uuid = @step_uuid AND ws.state = 'in_progress'
      AND ws.claim_expires_at < now() - make_interval(secs => @grace_seconds::double precision)
      AND ws.attempts >= ws.max_attempts
    RETURNING ws.step_uuid, ws.task_uuid, ws.attempts
)
INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
SELECT step_uuid, task_uuid, 'in_progress', 'error', attempts, @actor,
       'claim lease expired on the last attempt' FROM expired;
