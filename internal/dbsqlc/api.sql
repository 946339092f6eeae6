-- Reads for the REST API: task pages with progress, queue names for the
-- queue-depth metrics, and the readiness probe.

-- name: ListTaskSummaries :many
-- A page of tasks, newest first, each with how many of its steps are
-- complete or resolved by hand (the total is the task's step_count).
SELECT sqlc.embed(t),
       (SELECT count(*) FROM tasker.workflow_steps s
        WHERE s.task_uuid = t.task_uuid
          AND s.state IN ('complete', 'resolved_manually'))::integer AS completed_steps
FROM tasker.tasks t
WHERE (sqlc.narg(namespace_name)::text IS NULL OR t.namespace_name = sqlc.narg(namespace_name))
  AND (sqlc.narg(state)::text IS NULL OR t.state = sqlc.narg(state))
ORDER BY t.created_at DESC, t.task_uuid
LIMIT @max_rows OFFSET @skip_rows;

-- name: ListNamespaceQueues :many
-- The step queue of every workflow namespace.
SELECT queue_name FROM tasker.namespaces ORDER BY queue_name;

-- name: CheckDatabase :one
-- The readiness probe: succeeds when the database answers.
SELECT 1::integer AS ok;
