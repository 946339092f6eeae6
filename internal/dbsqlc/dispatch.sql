-- The worker's side of a step: claim it, load what it needs, record the
-- outcome. These run without the task lock; their WHERE clauses make each
-- change conditional on the step still being where the worker left it.

-- name: ClaimAndLoadStep :one
-- Claims a step for one attempt: enqueued → in_progress, attempts + 1, with
-- a lease of the step's timeout plus a margin. The step must belong to the
-- task the message names. A step whose previous claim expired (its worker
-- died) can be claimed again while it has attempts left. No row when the step
-- was cancelled, finished, or is held by a live claim.
--
-- In the same round trip it reads what the handler needs: the task's context
-- and identity, and every ancestor's result by name as one JSON object. Every
-- scan of the ancestor walk is limited to the step's task (edges by task,
-- steps by (task, name)): the planner cannot estimate a recursive CTE and
-- would otherwise pick plans that read whole tables.
WITH RECURSIVE current_step AS (
    SELECT ws.step_uuid, ws.state AS from_state FROM tasker.workflow_steps ws
    WHERE ws.step_uuid = @step_uuid AND ws.task_uuid = @task_uuid
      AND (ws.state = 'enqueued'
           OR (ws.state = 'in_progress' AND ws.claim_expires_at < now() AND ws.attempts < ws.max_attempts))
    FOR NO KEY UPDATE
), claimed AS (
    UPDATE tasker.workflow_steps s SET
        state = 'in_progress',
        attempts = s.attempts + 1,
        claimed_by = @worker_id::text,
        claim_expires_at = now() + make_interval(secs => s.timeout_seconds + @lease_margin_seconds::double precision),
        started_at = now(),
        updated_at = now()
    FROM current_step c
    WHERE s.step_uuid = c.step_uuid
    RETURNING s.*, c.from_state
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, from_state, 'in_progress', attempts, @worker_id::text,
           CASE WHEN from_state = 'in_progress' THEN 'claimed again after the previous claim expired'
                ELSE 'claimed' END
    FROM claimed
), edges AS MATERIALIZED (
    SELECT e.from_step_uuid, e.to_step_uuid FROM tasker.workflow_step_edges e WHERE e.task_uuid = @task_uuid
), ancestors AS (
    SELECT e.from_step_uuid FROM edges e WHERE e.to_step_uuid = @step_uuid
    UNION
    SELECT e.from_step_uuid FROM edges e
    JOIN ancestors a ON e.to_step_uuid = a.from_step_uuid
)
SELECT c.step_uuid, c.task_uuid, c.name, c.attempts, c.max_attempts, c.handler_callable, c.handler_initialization,
       c.retryable, c.backoff, c.backoff_base_ms, c.max_backoff_ms, c.jitter_percent, c.timeout_seconds,
       c.claim_expires_at::timestamptz AS claim_expires_at, c.from_state,
       t.namespace_name, t.name AS task_name, t.version, t.context, t.correlation_id, t.state AS task_state,
       (SELECT coalesce(jsonb_object_agg(s.name, s.results), '{}'::jsonb)
        FROM tasker.workflow_steps s JOIN ancestors a ON s.step_uuid = a.from_step_uuid
        WHERE s.task_uuid = @task_uuid)::jsonb AS ancestor_results
FROM claimed c JOIN tasker.tasks t ON t.task_uuid = c.task_uuid;

-- name: ExtendClaim :one
-- Extends the lease of a claim the worker still holds; no row when it lost it.
UPDATE tasker.workflow_steps SET
    claim_expires_at = now() + make_interval(secs => @lease_seconds::double precision),
    updated_at = now()
WHERE step_uuid = @step_uuid AND state = 'in_progress' AND claimed_by = @worker_id::text AND attempts = @attempt
RETURNING claim_expires_at::timestamptz AS claim_expires_at;

-- Recording a worker's outcome is one statement with the queue tables in it:
-- see orchestration/dispatch/record.go.

-- name: ReleaseClaim :execrows
-- Hands a claimed step back without an outcome (the worker is shutting
-- down): in_progress → enqueued, and the attempt does not count.
WITH released AS (
    UPDATE tasker.workflow_steps ws SET
        state = 'enqueued', attempts = ws.attempts - 1, claimed_by = NULL,
        claim_expires_at = NULL, enqueued_at = now(), updated_at = now()
    WHERE ws.step_uuid = @step_uuid AND ws.state = 'in_progress'
      AND ws.claimed_by = @worker_id::text AND ws.attempts = @attempt::integer
    RETURNING ws.step_uuid, ws.task_uuid, ws.attempts
)
INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
SELECT step_uuid, task_uuid, 'in_progress', 'enqueued', attempts, @worker_id::text,
       'handed back: the worker is shutting down' FROM released;
