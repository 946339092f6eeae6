-- name: CountInFlightSteps :one
-- Counts the steps being run (claimed by a worker: state in_progress) of
-- tasks in the given workflow namespaces, for the WorkerPool autoscaler.
-- The partial index on claim_expires_at covers exactly the in_progress rows.
SELECT count(*)::bigint AS in_flight
FROM tasker.workflow_steps ws
JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
WHERE ws.state = 'in_progress'
  AND t.namespace_name = ANY (@namespaces::text[]);
