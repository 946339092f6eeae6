-- The orchestration engine's tables. Everything lives in schema "tasker"
-- (the migrator creates it first; repeated here so the file stands alone for
-- sqlc). States are text with CHECK constraints so that psql shows them
-- plainly and a bad value fails loudly.

CREATE SCHEMA IF NOT EXISTS tasker;

-- A workflow namespace groups templates and owns one step queue.
CREATE TABLE tasker.namespaces (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]*$' AND length(name) <= 40),
    queue_name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A versioned workflow definition. definition holds the full, defaulted
-- definition as JSON; template_steps and template_edges hold the same steps
-- and edges as rows, which task creation copies from.
CREATE TABLE tasker.templates (
    template_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace_name    text NOT NULL REFERENCES tasker.namespaces (name),
    name              text NOT NULL,
    version           text NOT NULL,
    description       text NOT NULL DEFAULT '',
    identity_strategy text NOT NULL CHECK (identity_strategy IN ('strict', 'caller_provided', 'always_unique')),
    input_schema      jsonb,
    definition        jsonb NOT NULL,
    fingerprint       text NOT NULL,
    -- owner names who registered the template (a TaskTemplate resource as
    -- "k8s:<namespace>/<name>", or "cli"); the operator uses it to detect two
    -- resources claiming the same namespace/name/version.
    owner             text NOT NULL DEFAULT '',
    retired           boolean NOT NULL DEFAULT false,
    retired_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace_name, name, version)
);

CREATE TABLE tasker.template_steps (
    template_id            bigint NOT NULL REFERENCES tasker.templates (template_id) ON DELETE CASCADE,
    name                   text NOT NULL,
    position               integer NOT NULL,
    description            text NOT NULL DEFAULT '',
    handler_callable       text NOT NULL,
    handler_initialization jsonb,
    retryable              boolean NOT NULL,
    max_attempts           integer NOT NULL CHECK (max_attempts >= 1),
    backoff                text NOT NULL CHECK (backoff IN ('exponential', 'linear', 'constant')),
    backoff_base_ms        integer NOT NULL CHECK (backoff_base_ms >= 0),
    max_backoff_ms         integer NOT NULL CHECK (max_backoff_ms >= 0),
    jitter_percent         integer NOT NULL CHECK (jitter_percent BETWEEN 0 AND 100),
    timeout_seconds        integer NOT NULL CHECK (timeout_seconds >= 1),
    PRIMARY KEY (template_id, name)
);

CREATE TABLE tasker.template_edges (
    template_id bigint NOT NULL REFERENCES tasker.templates (template_id) ON DELETE CASCADE,
    from_step   text NOT NULL,
    to_step     text NOT NULL,
    PRIMARY KEY (template_id, from_step, to_step)
);

CREATE TABLE tasker.tasks (
    task_uuid       uuid PRIMARY KEY,
    template_id     bigint NOT NULL REFERENCES tasker.templates (template_id),
    namespace_name  text NOT NULL,
    name            text NOT NULL,
    version         text NOT NULL,
    state           text NOT NULL CHECK (state IN (
                        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
                        'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry',
                        'blocked_by_failures', 'complete', 'error', 'cancelled', 'resolved_manually')),
    context         jsonb NOT NULL,
    -- identity_hash makes duplicate submissions fail: a hash of the template
    -- and context (strict), of the idempotency key (caller_provided, or any
    -- strategy when a key is given), or a random value (always_unique).
    identity_hash   text NOT NULL UNIQUE,
    idempotency_key text,
    priority        integer NOT NULL DEFAULT 0,
    correlation_id  uuid NOT NULL,
    initiator       text NOT NULL DEFAULT '',
    source_system   text NOT NULL DEFAULT '',
    reason          text NOT NULL DEFAULT '',
    step_count      integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);

CREATE INDEX tasks_namespace_state_idx ON tasker.tasks (namespace_name, state, created_at DESC);
CREATE INDEX tasks_state_created_idx ON tasker.tasks (state, created_at DESC);

-- One row per step of a task. The step's definition (handler, retry policy,
-- timeout) is a snapshot taken at task creation, so a task keeps running the
-- definition it started with when its template changes.
CREATE TABLE tasker.workflow_steps (
    step_uuid              uuid PRIMARY KEY,
    task_uuid              uuid NOT NULL REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE,
    name                   text NOT NULL,
    position               integer NOT NULL,
    handler_callable       text NOT NULL,
    handler_initialization jsonb,
    retryable              boolean NOT NULL,
    max_attempts           integer NOT NULL,
    backoff                text NOT NULL,
    backoff_base_ms        integer NOT NULL,
    max_backoff_ms         integer NOT NULL,
    jitter_percent         integer NOT NULL,
    timeout_seconds        integer NOT NULL,
    state                  text NOT NULL DEFAULT 'pending' CHECK (state IN (
                               'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
                               'enqueued_as_error_for_orchestration', 'waiting_for_retry',
                               'complete', 'error', 'cancelled', 'resolved_manually')),
    -- unmet_dependencies counts parents not yet complete or resolved; the
    -- step is ready when it reaches zero.
    unmet_dependencies     integer NOT NULL CHECK (unmet_dependencies >= 0),
    attempts               integer NOT NULL DEFAULT 0,
    -- The claim: which worker runs the current attempt, until when.
    claimed_by             text,
    claim_expires_at       timestamptz,
    next_retry_at          timestamptz,
    results                jsonb,
    error                  jsonb,
    enqueued_at            timestamptz,
    started_at             timestamptz,
    completed_at           timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_uuid, name)
);

CREATE INDEX workflow_steps_retry_due_idx ON tasker.workflow_steps (next_retry_at)
    WHERE state = 'waiting_for_retry';
CREATE INDEX workflow_steps_claim_expiry_idx ON tasker.workflow_steps (claim_expires_at)
    WHERE state = 'in_progress';

CREATE TABLE tasker.workflow_step_edges (
    task_uuid      uuid NOT NULL REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE,
    from_step_uuid uuid NOT NULL,
    to_step_uuid   uuid NOT NULL,
    PRIMARY KEY (from_step_uuid, to_step_uuid)
);

CREATE INDEX workflow_step_edges_to_idx ON tasker.workflow_step_edges (to_step_uuid);
CREATE INDEX workflow_step_edges_task_idx ON tasker.workflow_step_edges (task_uuid);

-- Every state change of a task or step: from, to, when, by which process,
-- and why. from_state is NULL for the first state.
CREATE TABLE tasker.task_transitions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_uuid  uuid NOT NULL REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE,
    from_state text,
    to_state   text NOT NULL,
    actor      text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX task_transitions_task_idx ON tasker.task_transitions (task_uuid, id);

CREATE TABLE tasker.step_transitions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    step_uuid  uuid NOT NULL REFERENCES tasker.workflow_steps (step_uuid) ON DELETE CASCADE,
    task_uuid  uuid NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    attempt    integer NOT NULL,
    actor      text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX step_transitions_step_idx ON tasker.step_transitions (step_uuid, id);
CREATE INDEX step_transitions_task_idx ON tasker.step_transitions (task_uuid, id);

-- Queue messages that could not be used (malformed JSON shape, unknown
-- step, ...). The message itself is also archived in pgmq.a_<queue>; this
-- table records why.
CREATE TABLE tasker.dead_letters (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_name text NOT NULL,
    msg_id     bigint NOT NULL,
    message    jsonb,
    reason     text NOT NULL,
    actor      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The engine's fixed queues; namespace queues are created when a template
-- of that namespace is registered.
SELECT pgmq.create('orchestration_step_results');
SELECT pgmq.create('orchestration_task_requests');
