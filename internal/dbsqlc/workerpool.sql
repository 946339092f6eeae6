-- name: CountInFlightSteps :one
-- Counts the steps being run (claimed by a worker: state in_progress) of
-- tasks in the given workflow namespaces, for the WorkerPool autoscaler.
-- claim_expires_at is set exactly while a step is claimed; saying so lets
-- the planner read the claimed steps from the partial index on it instead
-- of every step ever run.
SELECT count(*)::bigint AS in_flight
FROM tasker.workflow_steps ws
JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
WHERE ws.claim_expires_at IS NOT NULL AND ws.state = 'in_progress'
  AND t.namespace_name = ANY (@namespaces::text[]);
