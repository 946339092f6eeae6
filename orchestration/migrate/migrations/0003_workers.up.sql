-- Live workers: each worker process registers itself and refreshes its
-- heartbeat, so that others can see which handlers are running where.
CREATE TABLE tasker.workers (
    worker_id    text PRIMARY KEY,
    hostname     text NOT NULL,
    namespaces   text[] NOT NULL,
    callables    text[] NOT NULL,
    concurrency  integer NOT NULL,
    version      text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workers_heartbeat_idx ON tasker.workers (heartbeat_at);
