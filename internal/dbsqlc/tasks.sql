-- Task creation, locking, state and reads.

-- name: FindTaskByIdentity :one
SELECT task_uuid FROM tasker.tasks WHERE identity_hash = @identity_hash;

-- name: LockTask :one
-- Every change the orchestrator makes to a task or its steps happens under
-- this lock, which serializes concurrent orchestrators per task. It is NO KEY
-- UPDATE, the lock an UPDATE of the task takes anyway; FOR UPDATE would also
-- hold up foreign-key checks of rows referencing the task (none has such a
-- key today: see migrations 0004 to 0006).
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
