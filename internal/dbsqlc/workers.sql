-- Worker registration and the worker's own step operations.

-- name: UpsertWorker :exec
INSERT INTO tasker.workers (worker_id, hostname, namespaces, callables, concurrency, version)
VALUES (@worker_id, @hostname, @namespaces::text[], @callables::text[], @concurrency, @version)
ON CONFLICT (worker_id) DO UPDATE SET
    hostname = EXCLUDED.hostname, namespaces = EXCLUDED.namespaces, callables = EXCLUDED.callables,
    concurrency = EXCLUDED.concurrency, version = EXCLUDED.version, heartbeat_at = now();

-- name: HeartbeatWorker :execrows
UPDATE tasker.workers SET heartbeat_at = now() WHERE worker_id = @worker_id;

-- name: DeleteWorker :exec
DELETE FROM tasker.workers WHERE worker_id = @worker_id;

-- name: ListLiveWorkers :many
-- Workers whose heartbeat is more recent than the given age.
SELECT * FROM tasker.workers
WHERE heartbeat_at > now() - make_interval(secs => @max_age_seconds::double precision)
ORDER BY worker_id;

-- name: DeleteStaleWorkers :execrows
DELETE FROM tasker.workers
WHERE heartbeat_at < now() - make_interval(secs => @max_age_seconds::double precision);
