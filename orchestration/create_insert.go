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

// createStatements caches, per step queue, the statement that creates a
// task (createSQLText with the queue's table).
var createStatements sync.Map

// createSQL returns createSQLText for a template whose steps go on
// stepQueue.
func createSQL(stepQueue string) string {
	if s, ok := createStatements.Load(stepQueue); ok {
		return s.(string) //nolint:forcetypeassert // only strings are stored
	}
	s := strings.Replace(createSQLText, createStepQueue, queue.Table(stepQueue), 1)
	actual, _ := createStatements.LoadOrStore(stepQueue, s)
	return actual.(string) //nolint:forcetypeassert // only strings are stored
}

// createStepQueue stands for the step queue's table in createSQLText.
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
//     between. Otherwise it writes nothing and reports "template changed";
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
// $14 reason, $15 actor, $16 the queue's channel, $17 the queue's name.
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
           AND coalesce((SELECT v.fingerprint = $2::text AND NOT v.retired FROM seen v), false) AS unchanged,
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
SELECT CASE WHEN NOT c.unchanged THEN '` + outcomeTemplateChanged + `'
            WHEN NOT c.rooted THEN '` + outcomeNoRootStep + `'
            WHEN t.task_uuid IS NULL THEN '` + outcomeDuplicate + `'
            ELSE '` + outcomeCreated + `' END,
       t.task_uuid, t.template_id, t.namespace_name, t.name, t.version, t.state, t.context, t.identity_hash,
       t.idempotency_key, t.priority, t.correlation_id, t.initiator, t.source_system, t.reason, t.step_count,
       t.created_at, t.updated_at, t.completed_at,
       (SELECT array_agg(s.step_uuid ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.name ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.state ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.attempts ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.max_attempts ORDER BY s.position) FROM steps s),
       (SELECT array_agg(s.enqueued_at ORDER BY s.position) FROM steps s),
       (SELECT count(pg_notify($16::text, $17::text)) FROM (SELECT FROM sent LIMIT 1) one)::integer
FROM checked c LEFT JOIN task t ON true`

// createColumns is how many columns createSQLText returns.
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
		queue.Channel(stepQueue), stepQueue,
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
	// The task's columns are NULL unless the task was created: read the
	// outcome alone first (pgx skips nil destinations).
	var outcome string
	dest := make([]any, createColumns)
	dest[0] = &outcome
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	var task *Task
	if outcome == outcomeCreated {
		var err error
		if task, err = scanCreated(rows); err != nil {
			return nil, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	switch outcome {
	case outcomeCreated:
		return task, nil
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

// scanCreated reads the row of a task createSQLText created.
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
