package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// stepsPerTask is the shape of every task of the workload: a diamond, one
// root, two middle steps and a leaf, joined by four edges.
const stepsPerTask = 4

// schemaSQL creates the floor's tables in schema floor: the columns the
// rows of the contract need and one index per table, plus the index on vt
// that every PGMQ queue table has. Each queue table has a client column so
// that the clients never touch each other's rows (in the engine a step is
// handled by one transaction at a time, too).
const schemaSQL = `
CREATE SCHEMA floor;
CREATE TABLE floor.tasks (
    task_uuid uuid PRIMARY KEY, namespace_name text NOT NULL, name text NOT NULL, state text NOT NULL,
    context jsonb, identity_hash text NOT NULL UNIQUE, step_count integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
) WITH (fillfactor = 80);
CREATE TABLE floor.task_transitions (
    id bigint GENERATED ALWAYS AS IDENTITY, task_uuid uuid NOT NULL, from_state text, to_state text NOT NULL,
    actor text NOT NULL, reason text, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (task_uuid, id)
);
CREATE TABLE floor.edges (
    task_uuid uuid NOT NULL, from_step_uuid uuid NOT NULL, to_step_uuid uuid NOT NULL,
    PRIMARY KEY (task_uuid, from_step_uuid, to_step_uuid)
);
CREATE TABLE floor.steps (
    step_uuid uuid PRIMARY KEY, task_uuid uuid NOT NULL, name text NOT NULL, state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0, claimed_by text, claim_expires_at timestamptz, results jsonb,
    enqueued_at timestamptz, started_at timestamptz, completed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);
CREATE TABLE floor.step_transitions (
    id bigint GENERATED ALWAYS AS IDENTITY, task_uuid uuid NOT NULL, step_uuid uuid NOT NULL, from_state text,
    to_state text NOT NULL, attempt integer NOT NULL, actor text NOT NULL, reason text,
    created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (task_uuid, id)
);
CREATE TABLE floor.q_steps (
    msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY, read_ct integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(), vt timestamptz NOT NULL, message jsonb, client integer NOT NULL
);
CREATE INDEX ON floor.q_steps (vt);
CREATE TABLE floor.q_results (
    msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY, read_ct integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(), vt timestamptz NOT NULL, message jsonb, client integer NOT NULL
);
CREATE INDEX ON floor.q_results (vt);
`

// claimExpirySQL adds the engine's claim-expiry index (a partial index on
// the lease, set by the claim and cleared by the outcome): with it, both
// updates change an indexed column and cannot be HOT.
const claimExpirySQL = `CREATE INDEX ON floor.steps (claim_expires_at) WHERE claim_expires_at IS NOT NULL`

// createSQL creates a batch of tasks in one statement: per task the task
// row, its four transitions to steps_in_process and its four edges; per
// step the row (enqueued at once, as a root step is), its transitions
// NULL → pending and pending → enqueued, and its message on the step queue.
// The engine enqueues a child only when its parents are complete; the
// floor writes that enqueue's transition and message here and its row
// update in releaseSQL, so that each step is written as often as in the
// engine.
//
// $1 task uuids, $2 step uuids, $3 each step's task, $4 step names,
// $5..$7 edges (task, from, to), $8 the client.
const createSQL = `WITH t AS (
    INSERT INTO floor.tasks (task_uuid, namespace_name, name, state, context, identity_hash, step_count)
    SELECT u, 'diamond_workflow', 'diamond', 'steps_in_process', '{"even_number": 6}', u::text, 4
    FROM unnest($1::uuid[]) AS u
    RETURNING task_uuid
), th AS (
    INSERT INTO floor.task_transitions (task_uuid, from_state, to_state, actor, reason)
    SELECT t.task_uuid, v.f, v.x, 'orchestrator', 'created' FROM t,
        (VALUES (NULL, 'pending'), ('pending', 'initializing'), ('initializing', 'enqueuing_steps'),
                ('enqueuing_steps', 'steps_in_process')) AS v (f, x)
), e AS (
    INSERT INTO floor.edges (task_uuid, from_step_uuid, to_step_uuid)
    SELECT e.task_uuid, e.from_step_uuid, e.to_step_uuid
    FROM unnest($5::uuid[], $6::uuid[], $7::uuid[]) AS e (task_uuid, from_step_uuid, to_step_uuid)
), s AS (
    INSERT INTO floor.steps (step_uuid, task_uuid, name, state, enqueued_at)
    SELECT i.step_uuid, i.task_uuid, i.name, 'enqueued', now()
    FROM unnest($2::uuid[], $3::uuid[], $4::text[]) AS i (step_uuid, task_uuid, name)
    RETURNING step_uuid, task_uuid
), sh AS (
    INSERT INTO floor.step_transitions (task_uuid, step_uuid, from_state, to_state, attempt, actor, reason)
    SELECT s.task_uuid, s.step_uuid, v.f, v.x, 0, 'orchestrator', v.r FROM s,
        (VALUES (NULL, 'pending', 'task created'), ('pending', 'enqueued', 'ready')) AS v (f, x, r)
)
INSERT INTO floor.q_steps (vt, message, client)
SELECT clock_timestamp(), jsonb_build_object('task_uuid', s.task_uuid, 'step_uuid', s.step_uuid), $8 FROM s`

// readSQL reads up to $1 of the client's step messages as pgmq.read does:
// it sets their visibility timeout and counts the read.
const readSQL = `UPDATE floor.q_steps AS q SET vt = clock_timestamp() + interval '30 seconds', read_ct = q.read_ct + 1
WHERE q.msg_id IN (
    SELECT m.msg_id FROM floor.q_steps AS m WHERE m.vt <= clock_timestamp() AND m.client = $2
    ORDER BY m.msg_id LIMIT $1 FOR UPDATE SKIP LOCKED
)
RETURNING q.msg_id, (q.message->>'step_uuid')::uuid`

// claimSQL moves the steps $1 from enqueued to in_progress and records the
// transition. LOCK stands for the row lock, EXPIRY for the lease.
const claimSQL = `WITH held AS MATERIALIZED (
    SELECT s.step_uuid FROM floor.steps AS s WHERE s.step_uuid = ANY($1::uuid[]) AND s.state = 'enqueued'
    ORDER BY s.step_uuid LOCK
), c AS (
    UPDATE floor.steps AS s SET state = 'in_progress', attempts = s.attempts + 1, claimed_by = 'worker',
        started_at = now(), updated_at = now() EXPIRY
    FROM held WHERE s.step_uuid = held.step_uuid AND s.state = 'enqueued'
    RETURNING s.step_uuid, s.task_uuid, s.attempts
)
INSERT INTO floor.step_transitions (task_uuid, step_uuid, from_state, to_state, attempt, actor, reason)
SELECT c.task_uuid, c.step_uuid, 'enqueued', 'in_progress', c.attempts, 'worker', 'claimed' FROM c`

// outcomeSQL stores the steps' results, moves them to
// enqueued_for_orchestration, records the transition, sends a message per
// step on the results queue and deletes the step messages $2. LOCK and
// EXPIRY as in claimSQL.
const outcomeSQL = `WITH held AS MATERIALIZED (
    SELECT s.step_uuid FROM floor.steps AS s WHERE s.step_uuid = ANY($1::uuid[]) AND s.state = 'in_progress'
    ORDER BY s.step_uuid LOCK
), o AS (
    UPDATE floor.steps AS s SET state = 'enqueued_for_orchestration', results = '{"value": 1296}',
        updated_at = now() EXPIRY
    FROM held WHERE s.step_uuid = held.step_uuid AND s.state = 'in_progress'
    RETURNING s.step_uuid, s.task_uuid, s.attempts
), h AS (
    INSERT INTO floor.step_transitions (task_uuid, step_uuid, from_state, to_state, attempt, actor, reason)
    SELECT o.task_uuid, o.step_uuid, 'in_progress', 'enqueued_for_orchestration', o.attempts, 'worker', 'succeeded'
    FROM o
), r AS (
    INSERT INTO floor.q_results (vt, message, client)
    SELECT clock_timestamp(), jsonb_build_object('task_uuid', o.task_uuid, 'step_uuid', o.step_uuid), $3 FROM o
)
DELETE FROM floor.q_steps WHERE msg_id = ANY($2::bigint[])`

// settleSQL takes up to $1 of the client's result messages (deleting them,
// as the engine does in the transaction that settles them), moves their
// steps to complete and records the transition.
const settleSQL = `WITH m AS (
    DELETE FROM floor.q_results WHERE msg_id IN (
        SELECT q.msg_id FROM floor.q_results AS q WHERE q.vt <= clock_timestamp() AND q.client = $2
        ORDER BY q.msg_id LIMIT $1 FOR UPDATE SKIP LOCKED
    )
    RETURNING (message->>'step_uuid')::uuid AS step_uuid
), d AS (
    UPDATE floor.steps AS s SET state = 'complete', completed_at = now(), updated_at = now()
    FROM m WHERE s.step_uuid = m.step_uuid AND s.state = 'enqueued_for_orchestration'
    RETURNING s.step_uuid, s.task_uuid, s.attempts
)
INSERT INTO floor.step_transitions (task_uuid, step_uuid, from_state, to_state, attempt, actor, reason)
SELECT d.task_uuid, d.step_uuid, 'enqueued_for_orchestration', 'complete', d.attempts, 'orchestrator', 'done'
FROM d`

// releaseSQL stands for what settling does beyond the step itself: one
// update per non-root step $1 (in the engine, its release from pending to
// enqueued when its last parent completes), and each task $2 moved to
// complete with its transition.
const releaseSQL = `WITH released AS (
    UPDATE floor.steps SET updated_at = now() WHERE step_uuid = ANY($1::uuid[])
), t AS (
    UPDATE floor.tasks SET state = 'complete', completed_at = now(), updated_at = now()
    WHERE task_uuid = ANY($2::uuid[])
    RETURNING task_uuid
)
INSERT INTO floor.task_transitions (task_uuid, from_state, to_state, actor, reason)
SELECT t.task_uuid, 'steps_in_process', 'complete', 'orchestrator', 'all steps complete' FROM t`

// variant is what the floor adds to its minimal form.
type variant struct {
	// locks takes each step's row lock (FOR NO KEY UPDATE SKIP LOCKED)
	// before the claim's and the outcome's updates, as the engine does.
	locks bool
	// claimExpiry sets a lease in the claim and clears it in the outcome,
	// on the engine's partial index.
	claimExpiry bool
}

// statements returns the claim and outcome statements of v.
func (v variant) statements() (claim, outcome string) {
	lock, setLease, clearLease := "", "", ""
	if v.locks {
		lock = "FOR NO KEY UPDATE SKIP LOCKED"
	}
	if v.claimExpiry {
		setLease, clearLease = ", claim_expires_at = now() + interval '30 seconds'", ", claim_expires_at = NULL"
	}
	claim = strings.NewReplacer("LOCK", lock, "EXPIRY", setLease).Replace(claimSQL)
	outcome = strings.NewReplacer("LOCK", lock, "EXPIRY", clearLease).Replace(outcomeSQL)
	return claim, outcome
}

// setup creates the floor's schema in the database of pool.
func setup(ctx context.Context, pool *pgxpool.Pool, v variant) error {
	if _, err := pool.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("creating the floor schema: %w", err)
	}
	if v.claimExpiry {
		if _, err := pool.Exec(ctx, claimExpirySQL); err != nil {
			return fmt.Errorf("creating the claim-expiry index: %w", err)
		}
	}
	return nil
}

// batch is one client's batch of tasks: their uuids, their steps' uuids,
// tasks and names, and their edges.
type batch struct {
	tasks, steps, stepTasks       []uuid.UUID
	names                         []string
	edgeTasks, edgeFroms, edgeTos []uuid.UUID
	nonRoots                      []uuid.UUID
}

// newBatch returns a batch of n diamond tasks with fresh uuids.
func newBatch(n int) batch {
	var b batch
	for range n {
		task := uuid.New()
		var ids [stepsPerTask]uuid.UUID
		for i := range ids {
			ids[i] = uuid.New()
			b.steps, b.stepTasks = append(b.steps, ids[i]), append(b.stepTasks, task)
			b.names = append(b.names, fmt.Sprintf("diamond_step_%d", i+1))
		}
		root, left, right, leaf := ids[0], ids[1], ids[2], ids[3]
		for _, e := range [][2]uuid.UUID{{root, left}, {root, right}, {left, leaf}, {right, leaf}} {
			b.edgeTasks, b.edgeFroms, b.edgeTos = append(b.edgeTasks, task), append(b.edgeFroms, e[0]), append(b.edgeTos, e[1])
		}
		b.tasks = append(b.tasks, task)
		b.nonRoots = append(b.nonRoots, left, right, leaf)
	}
	return b
}

// runBatch writes one batch of tasks through the whole life of their steps,
// a transaction per phase as the engine has them: create, read, claim,
// outcome, settle (with the releases and the tasks' completion).
func runBatch(ctx context.Context, pool *pgxpool.Pool, claim, outcome string, client int, b batch) error {
	if _, err := pool.Exec(ctx, createSQL, b.tasks, b.steps, b.stepTasks, b.names,
		b.edgeTasks, b.edgeFroms, b.edgeTos, client); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	rows, err := pool.Query(ctx, readSQL, len(b.steps), client)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	var msgs []int64
	var steps []uuid.UUID
	var msg int64
	var step uuid.UUID
	if _, err := pgx.ForEachRow(rows, []any{&msg, &step}, func() error {
		msgs, steps = append(msgs, msg), append(steps, step)
		return nil
	}); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(steps) != len(b.steps) {
		return fmt.Errorf("read %d of the batch's %d step messages", len(steps), len(b.steps))
	}
	if _, err := pool.Exec(ctx, claim, steps); err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	if _, err := pool.Exec(ctx, outcome, steps, msgs, client); err != nil {
		return fmt.Errorf("outcome: %w", err)
	}
	settle := &pgx.Batch{}
	settle.Queue(settleSQL, len(b.steps), client)
	settle.Queue(releaseSQL, b.nonRoots, b.tasks)
	// A pgx batch runs as one implicit transaction, as the engine settles.
	if err := pool.SendBatch(ctx, settle).Close(); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	return nil
}

// work runs batches of tasksPerBatch tasks from clients goroutines until
// the given number of tasks has been written, and returns how many were.
func work(ctx context.Context, pool *pgxpool.Pool, v variant, tasks, tasksPerBatch, clients int) (int, error) {
	claim, outcome := v.statements()
	var mu sync.Mutex
	started := 0
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for {
				mu.Lock()
				n := min(tasksPerBatch, tasks-started)
				started += n
				mu.Unlock()
				if n <= 0 {
					return
				}
				if err := runBatch(ctx, pool, claim, outcome, c, newBatch(n)); err != nil {
					errs[c] = fmt.Errorf("client %d: %w", c, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return min(started, tasks), errors.Join(errs...)
}
