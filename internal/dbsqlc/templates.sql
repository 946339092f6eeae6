-- Template registration and lookup.

-- name: EnsureNamespace :execrows
-- Affects one row when the namespace is new.
INSERT INTO tasker.namespaces (name, queue_name)
VALUES (@name, @queue_name)
ON CONFLICT (name) DO NOTHING;

-- name: GetTemplateForUpdate :one
SELECT * FROM tasker.templates
WHERE namespace_name = @namespace_name AND name = @name AND version = @version
FOR UPDATE;

-- name: GetTemplate :one
SELECT * FROM tasker.templates
WHERE namespace_name = @namespace_name AND name = @name AND version = @version;

-- name: ListTemplates :many
SELECT * FROM tasker.templates
WHERE (sqlc.narg(namespace_name)::text IS NULL OR namespace_name = sqlc.narg(namespace_name))
  AND (@include_retired::boolean OR NOT retired)
ORDER BY namespace_name, name, created_at;

-- name: InsertTemplate :one
INSERT INTO tasker.templates (
    namespace_name, name, version, description, identity_strategy,
    input_schema, definition, fingerprint, owner
) VALUES (
    @namespace_name, @name, @version, @description, @identity_strategy,
    @input_schema, @definition, @fingerprint, @owner
)
RETURNING template_id;

-- name: UpdateTemplate :exec
UPDATE tasker.templates SET
    description = @description,
    identity_strategy = @identity_strategy,
    input_schema = @input_schema,
    definition = @definition,
    fingerprint = @fingerprint,
    owner = @owner,
    retired = false,
    retired_at = NULL,
    updated_at = now()
WHERE template_id = @template_id;

-- name: DeleteTemplateSteps :exec
DELETE FROM tasker.template_steps WHERE template_id = @template_id;

-- name: DeleteTemplateEdges :exec
DELETE FROM tasker.template_edges WHERE template_id = @template_id;

-- name: InsertTemplateSteps :exec
-- All steps of one template in one statement: each array holds one column.
INSERT INTO tasker.template_steps (
    template_id, name, position, description, handler_callable, handler_initialization,
    retryable, max_attempts, backoff, backoff_base_ms, max_backoff_ms, jitter_percent, timeout_seconds
)
SELECT @template_id::bigint,
       unnest(@names::text[]), unnest(@positions::integer[]), unnest(@descriptions::text[]),
       unnest(@callables::text[]), unnest(@initializations::jsonb[]), unnest(@retryables::boolean[]),
       unnest(@max_attempts::integer[]), unnest(@backoffs::text[]), unnest(@backoff_base_ms::integer[]),
       unnest(@max_backoff_ms::integer[]), unnest(@jitter_percents::integer[]), unnest(@timeout_seconds::integer[]);

-- name: InsertTemplateEdges :exec
INSERT INTO tasker.template_edges (template_id, from_step, to_step)
SELECT @template_id::bigint, unnest(@from_steps::text[]), unnest(@to_steps::text[]);

-- name: RetireTemplate :execrows
UPDATE tasker.templates SET retired = true, retired_at = now(), updated_at = now()
WHERE namespace_name = @namespace_name AND name = @name AND version = @version AND NOT retired;
