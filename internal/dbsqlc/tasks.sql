-- Task creation, locking, state and reads.

-- name: InsertTask :exec
-- The task is written in the state its creating transaction leaves it in,
-- steps_in_process (nothing sees it before that commits); the transaction
-- records the states it passed through with RecordTaskTransitions.
INSERT INTO tasker.tasks (
    task_uuid, template_id, namespace_name, name, version, state, context, identity_hash,
    idempotency_key, priority, correlation_id, initiator, source_system, reason, step_count
) VALUES (
    @task_uuid, @template_id, @namespace_name, @name, @version, 'steps_in_process', @context, @identity_hash,
    sqlc.narg(idempotency_key), @priority, @correlation_id, @initiator, @source_system, @reason,
    (SELECT count(*) FROM tasker.template_steps WHERE template_id = @template_id)
);

-- name: FindTaskByIdentity :one
SELECT task_uuid FROM tasker.tasks WHERE identity_hash = @identity_hash;

-- name: InsertTaskSteps :many
-- Snapshots the template's steps into the task. unmet_dependencies starts
-- at the number of parents; root steps start at zero.
WITH inserted AS (
    INSERT INTO tasker.workflow_steps (
        step_uuid, task_uuid, name, position, handler_callable, handler_initialization,
        retryable, max_attempts, backoff, backoff_base_ms, max_backoff_ms, jitter_percent,
        timeout_seconds, unmet_dependencies
    )
    SELECT gen_random_uuid(), @task_uuid, s.name, s.position, s.handler_callable, s.handler_initialization,
           s.retryable, s.max_attempts, s.backoff, s.backoff_base_ms, s.max_backoff_ms, s.jitter_percent,
           s.timeout_seconds,
           (SELECT count(*) FROM tasker.template_edges e
            WHERE e.template_id = s.template_id AND e.to_step = s.name)
    FROM tasker.template_steps s
    WHERE s.template_id = @template_id
    RETURNING step_uuid, task_uuid, name
), recorded AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT step_uuid, task_uuid, NULL, 'pending', 0, @actor, 'task created'
    FROM inserted
)
SELECT step_uuid, name FROM inserted;

-- name: InsertTaskEdges :exec
-- Needs the rows of InsertTaskSteps, so it runs as a separate statement.
INSERT INTO tasker.workflow_step_edges (task_uuid, from_step_uuid, to_step_uuid)
SELECT @task_uuid, f.step_uuid, t.step_uuid
FROM tasker.template_edges e
JOIN tasker.workflow_steps f ON f.task_uuid = @task_uuid AND f.name = e.from_step
JOIN tasker.workflow_steps t ON t.task_uuid = @task_uuid AND t.name = e.to_step
WHERE e.template_id = @template_id;

-- name: LockTask :one
-- Every change the orchestrator makes to a task or its steps happens under
-- this lock, which serializes concurrent orchestrators per task. It is NO KEY
-- UPDATE, the lock an UPDATE of the task takes anyway: unlike FOR UPDATE it
-- lets the foreign-key checks of workers' inserts (step transitions) proceed
-- instead of waiting for the orchestrator's transaction.
SELECT * FROM tasker.tasks WHERE task_uuid = @task_uuid FOR NO KEY UPDATE;

-- name: LockTaskWithStep :one
-- LockTask and the task's step step_uuid, in one round trip. No row when
-- either is missing or the step is another task's (LockTask and GetStep then
-- tell which). The step is locked too: after waiting for the task's lock,
-- PostgreSQL re-reads only the rows the statement locks, so an unlocked step
-- would come back as it was before the wait.
SELECT sqlc.embed(t), sqlc.embed(s)
FROM tasker.tasks t JOIN tasker.workflow_steps s ON s.task_uuid = t.task_uuid
WHERE t.task_uuid = @task_uuid AND s.step_uuid = @step_uuid
FOR NO KEY UPDATE OF t, s;

-- name: TryLockTask :one
-- Like LockTask, but returns no row when another process holds the lock.
SELECT * FROM tasker.tasks WHERE task_uuid = @task_uuid FOR NO KEY UPDATE SKIP LOCKED;

-- name: GetTask :one
SELECT * FROM tasker.tasks WHERE task_uuid = @task_uuid;

-- name: TransitionTask :execrows
-- Moves a task from one state to another and records the transition; no row
-- is affected when the task is not in from_state.
WITH updated AS (
    UPDATE tasker.tasks t SET
        state = @to_state::text,
        updated_at = now(),
        completed_at = CASE WHEN @terminal::boolean THEN now() ELSE NULL END
    WHERE t.task_uuid = @task_uuid AND t.state = @from_state::text
    RETURNING t.task_uuid
)
INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, actor, reason)
SELECT task_uuid, @from_state::text, @to_state::text, @actor, @reason FROM updated;

-- name: RecordTaskTransitions :exec
-- Records a chain of transitions that happened inside one transaction,
-- e.g. pending → initializing → enqueuing_steps → steps_in_process. An empty
-- from state is stored as NULL (the first state).
INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, actor, reason)
SELECT @task_uuid::uuid, NULLIF(unnest(@from_states::text[]), ''), unnest(@to_states::text[]), @actor::text, unnest(@reasons::text[]);

-- name: CountTaskStepsByState :many
SELECT state, count(*)::integer AS steps
FROM tasker.workflow_steps
WHERE task_uuid = @task_uuid
GROUP BY state;

-- name: ListTasks :many
SELECT * FROM tasker.tasks
WHERE (sqlc.narg(namespace_name)::text IS NULL OR namespace_name = sqlc.narg(namespace_name))
  AND (sqlc.narg(state)::text IS NULL OR state = sqlc.narg(state))
ORDER BY created_at DESC, task_uuid
LIMIT @max_rows OFFSET @skip_rows;

-- name: CountTasks :one
SELECT count(*) FROM tasker.tasks
WHERE (sqlc.narg(namespace_name)::text IS NULL OR namespace_name = sqlc.narg(namespace_name))
  AND (sqlc.narg(state)::text IS NULL OR state = sqlc.narg(state));

-- name: ListTaskTransitions :many
SELECT * FROM tasker.task_transitions WHERE task_uuid = @task_uuid ORDER BY id;

-- name: NotifyTaskCancelled :exec
SELECT pg_notify(@channel::text, @task_uuid::text);
