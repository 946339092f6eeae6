package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

// newTask is a request that passed validation, ready to be written: the
// template row its context was checked against, the context as it is
// stored, its identity, and the UUID the task will have.
type newTask struct {
	uuid          uuid.UUID
	tmpl          dbsqlc.TaskerTemplate
	req           CreateTaskRequest
	context       json.RawMessage
	identity      identity
	correlationID uuid.UUID
	// activeVersions is, for a request that names no version, the active
	// versions of the template that tmpl was chosen among (activeVersionList);
	// the creating statement checks that they still are. Empty for a
	// request that names its version.
	activeVersions string
}

// errDuplicateIdentity means another task already has the new task's
// identity; nothing was written. CreateTask turns it into a
// *DuplicateTaskError naming that task.
var errDuplicateIdentity = errors.New("a task with the same identity exists")

// errNoRootStep means the template has no step without parents (or no
// step at all), so a task of it could never start; nothing was written.
// Registration refuses such templates, so this only guards the invariant.
var errNoRootStep = errors.New("the template has no root step to enqueue")

// The outcomes createSQLText reports in its first column.
const (
	outcomeCreated         = "created"
	outcomeDuplicate       = "duplicate"
	outcomeTemplateChanged = "template changed"
	outcomeNoRootStep      = "no root step"
)

// createStatements and createSetStatements cache, per step queue, the
// statements that create one task (createSQLText) and several
// (createSetSQLText) with the queue's table.
var createStatements, createSetStatements sync.Map

// createSQL returns createSQLText for a template whose steps go on
// stepQueue.
func createSQL(stepQueue string) string {
	return withStepQueue(&createStatements, createSQLText, stepQueue)
}

// createSetSQL returns createSetSQLText for templates whose steps go on
// stepQueue.
func createSetSQL(stepQueue string) string {
	return withStepQueue(&createSetStatements, createSetSQLText, stepQueue)
}

// withStepQueue returns text with stepQueue's table in place of
// createStepQueue, from cache or stored there.
func withStepQueue(cache *sync.Map, text, stepQueue string) string {
	if s, ok := cache.Load(stepQueue); ok {
		return s.(string) //nolint:forcetypeassert // only strings are stored
	}
	s := strings.Replace(text, createStepQueue, queue.Table(stepQueue), 1)
	actual, _ := cache.LoadOrStore(stepQueue, s)
	return actual.(string) //nolint:forcetypeassert // only strings are stored
}

// createStepQueue stands for the step queue's table in createSQLText and
// createSetSQLText.
const createStepQueue = "<step queue>"

// createSQLText is the one statement that creates a task of a template
// (createSQL puts in the table of the template's step queue). In one round
// trip, and atomically even outside a transaction, it:
//
//   - locks the template row FOR SHARE (Register takes it FOR UPDATE, so the
//     template cannot change until the creating transaction ends) and
//     checks that it still has the fingerprint the context was validated
//     against and is not retired, both as locked (the latest version) and as
//     the statement's snapshot sees it: the snapshot, taken before the lock,
//     is what reads the template's steps, and a registration may commit in
//     between. For a request that named no version, it also checks that the
//     template's active versions are those tmpl was chosen among (no version
//     added, retired or restored since: tmpl is still the newest; see
//     activeVersionList). Otherwise it writes nothing and reports "template
//     changed";
//   - inserts the task, directly in steps_in_process (nothing sees it before
//     the transaction commits). A task with the same identity makes it write
//     nothing and report "duplicate": ON CONFLICT DO NOTHING on the identity
//     waits for a concurrent creator of the same identity and never aborts
//     the transaction, which other tasks may share (group commit);
//   - copies the template's steps, the root steps (no parents) directly as
//     enqueued, and its edges;
//   - records the same transitions as creating the steps pending and then
//     enqueuing the ready ones did: every step NULL → pending ("task
//     created"), then every root step pending → enqueued ("root step"), and
//     the task's pending → initializing → enqueuing_steps →
//     steps_in_process, in that order of ids;
//   - sends one StepMessage per root step on the step queue, and notifies
//     the queue's channel once (delivered at commit).
//
// It returns the outcome and, when the task was created, the task's row and
// its steps in template order (position), which is what GetTask would read
// after the commit. The steps' results, error, started_at, completed_at
// and next_retry_at are NULL in a new step, so they are not returned.
//
// $1 template_id, $2 fingerprint, $3 task_uuid, $4 namespace, $5 name,
// $6 version, $7 context, $8 identity_hash, $9 idempotency_key (or NULL),
// $10 priority, $11 correlation_id, $12 initiator, $13 source_system,
// $14 reason, $15 actor, $16 the queue's channel, $17 the queue's name,
// $18 the active versions tmpl was chosen among (NULL when the request
// named a version).
const createSQLText = `-- name: CreateTask (orchestration/create_insert.go)
WITH locked AS MATERIALIZED (
    SELECT t.fingerprint, t.retired FROM tasker.templates t WHERE t.template_id = $1::bigint FOR SHARE
), seen AS MATERIALIZED (
    SELECT t.fingerprint, t.retired FROM tasker.templates t WHERE t.template_id = $1::bigint
), edge_plan AS MATERIALIZED (
    SELECT e.from_step, e.to_step FROM tasker.template_edges e WHERE e.template_id = $1::bigint
), plan AS MATERIALIZED (
    SELECT s.*, coalesce(p.parents, 0)::integer AS parents
    FROM tasker.template_steps s
    LEFT JOIN (SELECT e.to_step, count(*) AS parents FROM edge_plan e GROUP BY e.to_step) p
        ON p.to_step = s.name
    WHERE s.template_id = $1::bigint
), checked AS (
    SELECT coalesce((SELECT l.fingerprint = $2::text AND NOT l.retired FROM locked l), false)
           AND coalesce((SELECT v.fingerprint = $2::text AND NOT v.retired FROM seen v), false)
           AND ($18::text IS NULL OR $18::text = coalesce((
               SELECT string_agg(a.template_id::text, ',' ORDER BY a.template_id) FROM tasker.templates a
               WHERE a.namespace_name = $4::text AND a.name = $5::text AND NOT a.retired), '')) AS unchanged,
           EXISTS (SELECT FROM plan WHERE plan.parents = 0) AS rooted
), task AS (
    INSERT INTO tasker.tasks (
        task_uuid, template_id, namespace_name, name, version, state, context, identity_hash,
        idempotency_key, priority, correlation_id, initiator, source_system, reason, step_count
    )
    SELECT $3::uuid, $1::bigint, $4::text, $5::text, $6::text, 'steps_in_process', $7::jsonb, $8::text,
           $9::text, $10::integer, $11::uuid, $12::text, $13::text, $14::text, (SELECT count(*) FROM plan)
    FROM checked
    WHERE checked.unchanged AND checked.rooted
    ON CONFLICT (identity_hash) DO NOTHING
    RETURNING *
), steps AS (
    INSERT INTO tasker.workflow_steps (
        step_uuid, task_uuid, name, position, handler_callable, handler_initialization,
        retryable, max_attempts, backoff, backoff_base_ms, max_backoff_ms, jitter_percent,
        timeout_seconds, unmet_dependencies, state, enqueued_at
    )
    SELECT gen_random_uuid(), task.task_uuid, p.name, p.position, p.handler_callable, p.handler_initialization,
           p.retryable, p.max_attempts, p.backoff, p.backoff_base_ms, p.max_backoff_ms, p.jitter_percent,
           p.timeout_seconds, p.parents,
           CASE WHEN p.parents = 0 THEN 'enqueued' ELSE 'pending' END,
           CASE WHEN p.parents = 0 THEN now() END
    FROM task, plan p
    RETURNING step_uuid, task_uuid, name, position, state, attempts, max_attempts, enqueued_at
), edges AS (
    INSERT INTO tasker.workflow_step_edges (task_uuid, from_step_uuid, to_step_uuid)
    SELECT parent.task_uuid, parent.step_uuid, child.step_uuid
    FROM edge_plan e
    JOIN steps parent ON parent.name = e.from_step
    JOIN steps child ON child.name = e.to_step
), step_history AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT h.step_uuid, h.task_uuid, h.from_state, h.to_state, h.attempt, $15::text, h.reason
    FROM (
        SELECT 1 AS pass, s.position, s.step_uuid, s.task_uuid, NULL::text AS from_state,
               'pending'::text AS to_state, 0 AS attempt, 'task created'::text AS reason
        FROM steps s
        UNION ALL
        SELECT 2, s.position, s.step_uuid, s.task_uuid, 'pending', 'enqueued', s.attempts, 'root step'
        FROM steps s
        WHERE s.state = 'enqueued'
    ) h
    ORDER BY h.pass, h.position
), task_history AS (
    INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, actor, reason)
    SELECT task.task_uuid, h.from_state, h.to_state, $15::text, h.reason
    FROM task, unnest(
        ARRAY[NULL, 'pending', 'initializing', 'enqueuing_steps']::text[],
        ARRAY['pending', 'initializing', 'enqueuing_steps', 'steps_in_process']::text[],
        ARRAY['task created',
              format('%s steps created from the template', (SELECT count(*) FROM steps)),
              format('enqueuing %s root steps', (SELECT count(*) FROM steps WHERE steps.state = 'enqueued')),
              'root steps enqueued']::text[]
    ) WITH ORDINALITY AS h (from_state, to_state, reason, n)
    ORDER BY h.n
), sent AS (
    INSERT INTO ` + createStepQueue + ` (vt, message)
    SELECT clock_timestamp(),
           jsonb_build_object('task_uuid', s.task_uuid, 'step_uuid', s.step_uuid, 'step_name', s.name,
                              'namespace', $4::text, 'correlation_id', $11::uuid)
    FROM steps s
    WHERE s.state = 'enqueued'
    ORDER BY s.position
    RETURNING msg_id
)
` + createOutcomeColumns + `
       (SELECT array_agg(s.step_uuid ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.name ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.state ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.attempts ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.max_attempts ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.enqueued_at ORDER BY s.position) FROM steps s),
       (SELECT count(pg_notify($16::text, $17::text)) FROM (SELECT FROM sent LIMIT 1) one)::integer
FROM checked c LEFT JOIN task t ON true`

// createOutcomeColumns starts the final SELECT of createSQLText and
// createSetSQLText, which scanOutcome reads alike: the outcome (from c, the
// checked input) and the task's row (t, NULL unless the task was created),
// followed in each statement by the six step arrays and the notification
// count.
const createOutcomeColumns = `SELECT CASE WHEN NOT c.unchanged THEN '` + outcomeTemplateChanged + `'
            WHEN NOT c.rooted THEN '` + outcomeNoRootStep + `'
            WHEN t.task_uuid IS NULL THEN '` + outcomeDuplicate + `'
            ELSE '` + outcomeCreated + `' END,
       t.task_uuid, t.template_id, t.namespace_name, t.name, t.version, t.state, t.context, t.identity_hash,
       t.idempotency_key, t.priority, t.correlation_id, t.initiator, t.source_system, t.reason, t.step_count,
       t.created_at, t.updated_at, t.completed_at,`

// createColumns is how many columns createSQLText and createSetSQLText
// return.
const createColumns = 26

// createArgs returns the statement that creates n (createSQLText) and
// its arguments.
func (e *Engine) createArgs(n *newTask) (string, []any) {
	var key *string
	if n.req.IdempotencyKey != "" {
		key = &n.req.IdempotencyKey
	}
	stepQueue := dispatch.StepQueue(n.tmpl.NamespaceName)
	return createSQL(stepQueue), []any{
		n.tmpl.TemplateID, n.tmpl.Fingerprint, n.uuid, n.tmpl.NamespaceName, n.tmpl.Name, n.tmpl.Version,
		n.context, n.identity.hash, key, int32(n.req.Priority), n.correlationID,
		n.req.Initiator, n.req.SourceSystem, n.req.Reason, e.cfg.ProcessID,
		queue.Channel(stepQueue), stepQueue, activeVersionsArg(n),
	}
}

// activeVersionsArg returns n's activeVersions as the creating statements
// take it: NULL when the request named its version.
func activeVersionsArg(n *newTask) *string {
	if n.activeVersions == "" {
		return nil
	}
	return &n.activeVersions
}

// createSetSQLText creates several tasks whose steps go on the same step
// queue (createSetSQL puts in its table) in one statement, and writes for
// each exactly what createSQLText writes for one: createTogether sends it
// for the tasks of a shared transaction instead of one createSQLText per
// task. Most of what createSQLText costs is per statement (starting the
// executor for a dozen CTEs, binding it, queueing and firing the
// foreign-key checks), not per row, so one statement for many tasks costs
// far less than one per task. Per task, it does what createSQLText does:
//
//   - it locks the rows of the tasks' templates FOR SHARE, in the order of
//     their ids, and checks each task's template as createSQLText does
//     (fingerprint and retired, as locked and as the snapshot sees it). A
//     task whose template changed (for a request without a version, also:
//     whose template's active versions changed), or has no root step, is
//     not inserted and gets its outcome; the other tasks go on;
//   - it inserts the tasks in identity order (byte order, COLLATE "C", as Go
//     compares strings; for equal identities, input order), with ORDER BY
//     in the SELECT that feeds the INSERT: the waits for other
//     transactions' identities then come in the same order as in any other
//     creating transaction (see createTogether). Two tasks of the input
//     with the same identity are no error: ON CONFLICT DO NOTHING skips the
//     later one, which finds the row of the earlier one, and it is reported
//     "duplicate" as a task of another transaction would be;
//   - it draws the steps' uuids before inserting them (new_steps), so that
//     the steps, edges, transitions and messages are all written from that
//     one relation. An edge finds its steps' uuids by index in an array per
//     task rather than by joining the steps with themselves: the planner
//     cannot tell how many rows a CTE holds, and joined them with a nested
//     loop, quadratic in the steps of the batch;
//   - it writes the rows that get ids (transitions, messages) in the order
//     the statements of createSQLText, one per task in identity order,
//     would give them: task by task, and within a task as createSQLText
//     does;
//   - it notifies the queue's channel once, when it sent any message.
//
// It returns one row per input task, in input order, with the columns of
// createSQLText: the outcome and, when the task was created, the task's
// row and its steps in template order (read back from the inserted rows).
//
// $1 task uuids, $2 template ids, $3 fingerprints, $4 namespaces, $5 names,
// $6 versions, $7 contexts (JSON text), $8 identity hashes, $9 idempotency
// keys (or NULL), $10 priorities, $11 correlation ids, $12 initiators,
// $13 source systems, $14 reasons, $18 the active versions each template
// was chosen among (NULL for a request that named its version; parallel
// arrays, one element per task), $15 actor, $16 the queue's channel, $17
// the queue's name.
const createSetSQLText = `-- name: CreateTasks (orchestration/create_insert.go)
WITH input AS MATERIALIZED (
    SELECT i.n, i.task_uuid, i.template_id, i.fingerprint, i.namespace_name, i.name, i.version,
           i.context::jsonb AS context, i.identity_hash, i.idempotency_key, i.priority, i.correlation_id,
           i.initiator, i.source_system, i.reason, i.active_versions
    FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                $9::text[], $10::integer[], $11::uuid[], $12::text[], $13::text[], $14::text[], $18::text[])
        WITH ORDINALITY AS i (task_uuid, template_id, fingerprint, namespace_name, name, version, context,
                              identity_hash, idempotency_key, priority, correlation_id, initiator, source_system,
                              reason, active_versions, n)
), locked AS MATERIALIZED (
    SELECT t.template_id, t.fingerprint, t.retired FROM tasker.templates t
    WHERE t.template_id = ANY($2::bigint[])
    ORDER BY t.template_id
    FOR SHARE
), seen AS MATERIALIZED (
    SELECT t.template_id, t.fingerprint, t.retired FROM tasker.templates t WHERE t.template_id = ANY($2::bigint[])
), edge_plan AS MATERIALIZED (
    SELECT e.template_id, e.from_step, e.to_step FROM tasker.template_edges e WHERE e.template_id = ANY($2::bigint[])
), plan AS MATERIALIZED (
    SELECT s.*, coalesce(p.parents, 0)::integer AS parents,
           row_number() OVER (PARTITION BY s.template_id ORDER BY s.position, s.name)::integer AS idx
    FROM tasker.template_steps s
    LEFT JOIN (SELECT e.template_id, e.to_step, count(*) AS parents FROM edge_plan e GROUP BY e.template_id, e.to_step) p
        ON p.template_id = s.template_id AND p.to_step = s.name
    WHERE s.template_id = ANY($2::bigint[])
), edge_index AS MATERIALIZED (
    SELECT e.template_id, f.idx AS from_idx, c.idx AS to_idx
    FROM edge_plan e
    JOIN plan f ON f.template_id = e.template_id AND f.name = e.from_step
    JOIN plan c ON c.template_id = e.template_id AND c.name = e.to_step
), shape AS MATERIALIZED (
    SELECT p.template_id, count(*) AS steps, count(*) FILTER (WHERE p.parents = 0) AS roots
    FROM plan p GROUP BY p.template_id
), active AS MATERIALIZED (
    SELECT a.namespace_name, a.name, string_agg(a.template_id::text, ',' ORDER BY a.template_id) AS versions
    FROM tasker.templates a
    WHERE NOT a.retired
      AND (a.namespace_name, a.name) IN (SELECT i.namespace_name, i.name FROM input i WHERE i.active_versions IS NOT NULL)
    GROUP BY a.namespace_name, a.name
), checked AS MATERIALIZED (
    SELECT i.*,
           coalesce(l.fingerprint = i.fingerprint AND NOT l.retired, false)
           AND coalesce(v.fingerprint = i.fingerprint AND NOT v.retired, false)
           AND (i.active_versions IS NULL OR i.active_versions = coalesce(a.versions, '')) AS unchanged,
           coalesce(sh.roots > 0, false) AS rooted, coalesce(sh.steps, 0) AS step_count
    FROM input i
    LEFT JOIN locked l ON l.template_id = i.template_id
    LEFT JOIN seen v ON v.template_id = i.template_id
    LEFT JOIN shape sh ON sh.template_id = i.template_id
    LEFT JOIN active a ON a.namespace_name = i.namespace_name AND a.name = i.name
), task AS (
    INSERT INTO tasker.tasks (
        task_uuid, template_id, namespace_name, name, version, state, context, identity_hash,
        idempotency_key, priority, correlation_id, initiator, source_system, reason, step_count
    )
    SELECT c.task_uuid, c.template_id, c.namespace_name, c.name, c.version, 'steps_in_process', c.context,
           c.identity_hash, c.idempotency_key, c.priority, c.correlation_id, c.initiator, c.source_system, c.reason,
           c.step_count
    FROM checked c
    WHERE c.unchanged AND c.rooted
    ORDER BY c.identity_hash COLLATE "C", c.n
    ON CONFLICT (identity_hash) DO NOTHING
    RETURNING *
), new_steps AS MATERIALIZED (
    SELECT t.task_uuid, t.identity_hash, t.namespace_name, t.correlation_id, gen_random_uuid() AS step_uuid, p.*
    FROM task t JOIN plan p ON p.template_id = t.template_id
), steps AS (
    INSERT INTO tasker.workflow_steps (
        step_uuid, task_uuid, name, position, handler_callable, handler_initialization,
        retryable, max_attempts, backoff, backoff_base_ms, max_backoff_ms, jitter_percent,
        timeout_seconds, unmet_dependencies, state, enqueued_at
    )
    SELECT s.step_uuid, s.task_uuid, s.name, s.position, s.handler_callable, s.handler_initialization,
           s.retryable, s.max_attempts, s.backoff, s.backoff_base_ms, s.max_backoff_ms, s.jitter_percent,
           s.timeout_seconds, s.parents,
           CASE WHEN s.parents = 0 THEN 'enqueued' ELSE 'pending' END,
           CASE WHEN s.parents = 0 THEN now() END
    FROM new_steps s
    ORDER BY s.identity_hash COLLATE "C", s.position
    RETURNING step_uuid, task_uuid, name, position, state, attempts, max_attempts, enqueued_at
), uuid_lists AS MATERIALIZED (
    SELECT s.task_uuid, s.template_id, array_agg(s.step_uuid ORDER BY s.idx) AS uuids
    FROM new_steps s
    GROUP BY s.task_uuid, s.template_id
), edges AS (
    INSERT INTO tasker.workflow_step_edges (task_uuid, from_step_uuid, to_step_uuid)
    SELECT u.task_uuid, u.uuids[e.from_idx], u.uuids[e.to_idx]
    FROM uuid_lists u JOIN edge_index e ON e.template_id = u.template_id
), step_history AS (
    INSERT INTO tasker.step_transitions (step_uuid, task_uuid, from_state, to_state, attempt, actor, reason)
    SELECT h.step_uuid, h.task_uuid, h.from_state, h.to_state, 0, $15::text, h.reason
    FROM (
        SELECT s.identity_hash, 1 AS pass, s.position, s.step_uuid, s.task_uuid, NULL::text AS from_state,
               'pending'::text AS to_state, 'task created'::text AS reason
        FROM new_steps s
        UNION ALL
        SELECT s.identity_hash, 2, s.position, s.step_uuid, s.task_uuid, 'pending', 'enqueued', 'root step'
        FROM new_steps s
        WHERE s.parents = 0
    ) h
    ORDER BY h.identity_hash COLLATE "C", h.pass, h.position
), task_history AS (
    INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, actor, reason)
    SELECT t.task_uuid, h.from_state, h.to_state, $15::text, h.reason
    FROM task t
    JOIN shape sh ON sh.template_id = t.template_id
    CROSS JOIN LATERAL unnest(
        ARRAY[NULL, 'pending', 'initializing', 'enqueuing_steps']::text[],
        ARRAY['pending', 'initializing', 'enqueuing_steps', 'steps_in_process']::text[],
        ARRAY['task created',
              format('%s steps created from the template', sh.steps),
              format('enqueuing %s root steps', sh.roots),
              'root steps enqueued']::text[]
    ) WITH ORDINALITY AS h (from_state, to_state, reason, k)
    ORDER BY t.identity_hash COLLATE "C", h.k
), sent AS (
    INSERT INTO ` + createStepQueue + ` (vt, message)
    SELECT clock_timestamp(),
           jsonb_build_object('task_uuid', s.task_uuid, 'step_uuid', s.step_uuid, 'step_name', s.name,
                              'namespace', s.namespace_name, 'correlation_id', s.correlation_id)
    FROM new_steps s
    WHERE s.parents = 0
    ORDER BY s.identity_hash COLLATE "C", s.position
    RETURNING msg_id
), step_lists AS MATERIALIZED (
    SELECT s.task_uuid,
           array_agg(s.step_uuid ORDER BY s.position) AS uuids, array_agg(s.name ORDER BY s.position) AS names,
           array_agg(s.state ORDER BY s.position) AS states, array_agg(s.attempts ORDER BY s.position) AS attempts,
           array_agg(s.max_attempts ORDER BY s.position) AS max_attempts,
           array_agg(s.enqueued_at ORDER BY s.position) AS enqueued_at
    FROM steps s
    GROUP BY s.task_uuid
)
` + createOutcomeColumns + `
       l.uuids, l.names, l.states, l.attempts, l.max_attempts, l.enqueued_at,
       (SELECT count(pg_notify($16::text, $17::text)) FROM (SELECT FROM sent LIMIT 1) one)::integer
FROM checked c
LEFT JOIN task t ON t.task_uuid = c.task_uuid
LEFT JOIN step_lists l ON l.task_uuid = c.task_uuid
ORDER BY c.n`

// createSetArgs returns the statement that creates the tasks of calls
// (createSetSQLText), whose steps all go on stepQueue, in the order of
// calls, and its arguments.
func (e *Engine) createSetArgs(stepQueue string, calls []*createCall) (string, []any) {
	n := len(calls)
	var (
		taskUUIDs      = make([]uuid.UUID, n)
		templateIDs    = make([]int64, n)
		fingerprints   = make([]string, n)
		namespaces     = make([]string, n)
		names          = make([]string, n)
		versions       = make([]string, n)
		contexts       = make([]string, n)
		identities     = make([]string, n)
		keys           = make([]*string, n)
		priorities     = make([]int32, n)
		correlationIDs = make([]uuid.UUID, n)
		initiators     = make([]string, n)
		sourceSystems  = make([]string, n)
		reasons        = make([]string, n)
		active         = make([]*string, n)
	)
	for i, call := range calls {
		t := call.task
		taskUUIDs[i], templateIDs[i], fingerprints[i] = t.uuid, t.tmpl.TemplateID, t.tmpl.Fingerprint
		namespaces[i], names[i], versions[i] = t.tmpl.NamespaceName, t.tmpl.Name, t.tmpl.Version
		contexts[i], identities[i], priorities[i] = string(t.context), t.identity.hash, int32(t.req.Priority)
		if t.req.IdempotencyKey != "" {
			keys[i] = &t.req.IdempotencyKey
		}
		correlationIDs[i], initiators[i], sourceSystems[i], reasons[i] = t.correlationID, t.req.Initiator, t.req.SourceSystem, t.req.Reason
		active[i] = activeVersionsArg(t)
	}
	return createSetSQL(stepQueue), []any{
		taskUUIDs, templateIDs, fingerprints, namespaces, names, versions, contexts, identities, keys,
		priorities, correlationIDs, initiators, sourceSystems, reasons, e.cfg.ProcessID,
		queue.Channel(stepQueue), stepQueue, active,
	}
}

// querier runs one statement: a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// insertTask creates n with createSQLText on db, on its own: outside a
// transaction the statement commits by itself. It returns the created task,
// or errDuplicateIdentity, errTemplateChanged, errNoRootStep or the
// database's error, in which case nothing was written.
func (e *Engine) insertTask(ctx context.Context, db querier, n *newTask) (*Task, error) {
	sql, args := e.createArgs(n)
	rows, err := db.Query(ctx, sql, args...)
	return readCreated(rows, err)
}

// readCreated reads the result of createSQLText. A row may come before an error
// (a foreign-key check runs at the end of the statement), so the outcome
// counts only once the result was read to its end without an error.
func readCreated(rows pgx.Rows, err error) (*Task, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("the creating statement returned no row")
	}
	task, err := scanOutcome(rows)
	rows.Close()
	if rowsErr := rows.Err(); rowsErr != nil {
		return nil, rowsErr
	}
	return task, err
}

// readCreatedSet reads the result of createSetSQLText into answers, one
// per task of its input, in input order. As with readCreated, the answers
// count only once the result was read to its end: when it returns an
// error, the statement failed (or its result makes no sense) and no answer
// counts.
func readCreatedSet(rows pgx.Rows, err error, answers []createAnswer) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	read := 0
	for rows.Next() {
		if read == len(answers) {
			return fmt.Errorf("the creating statement returned more than %d rows", len(answers))
		}
		answers[read].task, answers[read].err = scanOutcome(rows)
		if answers[read].err != nil && !isCreateOutcome(answers[read].err) {
			return answers[read].err
		}
		read++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if read != len(answers) {
		return fmt.Errorf("the creating statement returned %d rows for %d tasks", read, len(answers))
	}
	return nil
}

// scanOutcome reads the current row of createSQLText or createSetSQLText:
// the task when it was created, else errDuplicateIdentity,
// errTemplateChanged or errNoRootStep, or the error reading the row.
func scanOutcome(rows pgx.Rows) (*Task, error) {
	// The task's columns are NULL unless the task was created: read the
	// outcome alone first (pgx skips nil destinations).
	var outcome string
	dest := make([]any, createColumns)
	dest[0] = &outcome
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	switch outcome {
	case outcomeCreated:
		return scanCreated(rows)
	case outcomeDuplicate:
		return nil, errDuplicateIdentity
	case outcomeTemplateChanged:
		return nil, errTemplateChanged
	case outcomeNoRootStep:
		return nil, errNoRootStep
	default:
		return nil, fmt.Errorf("the creating statement reported %q", outcome)
	}
}

// scanCreated reads the row of a task createSQLText or createSetSQLText
// created.
func scanCreated(rows pgx.Rows) (*Task, error) {
	var (
		outcome               string
		row                   dbsqlc.TaskerTask
		uuids                 []uuid.UUID
		names, states         []string
		attempts, maxAttempts []int32
		enqueuedAt            []*time.Time
		notified              int32 // only makes the statement call pg_notify
	)
	err := rows.Scan(&outcome,
		&row.TaskUUID, &row.TemplateID, &row.NamespaceName, &row.Name, &row.Version, &row.State, &row.Context,
		&row.IdentityHash, &row.IdempotencyKey, &row.Priority, &row.CorrelationID, &row.Initiator,
		&row.SourceSystem, &row.Reason, &row.StepCount, &row.CreatedAt, &row.UpdatedAt, &row.CompletedAt,
		&uuids, &names, &states, &attempts, &maxAttempts, &enqueuedAt, &notified)
	if err != nil {
		return nil, err
	}
	n := len(uuids)
	if len(names) != n || len(states) != n || len(attempts) != n || len(maxAttempts) != n || len(enqueuedAt) != n {
		return nil, errors.New("the creating statement returned step columns of different lengths")
	}
	task := taskFromRow(row)
	task.Steps = make([]Step, n)
	for i := range n {
		task.Steps[i] = Step{
			UUID: uuids[i], Name: names[i], State: StepState(states[i]),
			Attempts: int(attempts[i]), MaxAttempts: int(maxAttempts[i]), EnqueuedAt: enqueuedAt[i],
		}
	}
	return task, nil
}
