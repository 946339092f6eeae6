package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

// samplesKept is how many calls of each hot statement the tracer keeps the
// arguments of: a uniform sample of all its calls.
const samplesKept = 16

// hotStatement is one of the engine's hottest statements, which -explain
// explains. Its text is not copied here: the tracer takes it, and the
// arguments of its last calls, from the engine's and workers' connections.
type hotStatement struct {
	// name and source name the statement and where it is written.
	name, source string
	// match recognises the statement's text.
	match func(sql string) bool
	// rewind puts the rows the statement works on back into the state it
	// found them in, before it is explained in a transaction that is
	// rolled back: every step has completed by then. It takes the UUIDs
	// among the statement's arguments as $1 when takesUUIDs.
	rewind     string
	takesUUIDs bool
}

// explained lists the statements -explain explains: the creation of a
// batch of tasks, the worker's claim and outcome, the orchestrator's release
// of a completed step's children, and the reads of the workload's step
// queue and of the results queue.
func explained(namespace string) []hotStatement {
	stepQueue := queue.Table(dispatch.StepQueue(namespace))
	resultsQueue := queue.Table(dispatch.ResultsQueue)
	readOf := func(table string) func(string) bool {
		return func(sql string) bool {
			return strings.HasPrefix(sql, "WITH picked AS (") && strings.Contains(sql, table)
		}
	}
	requeue := func(table string) string {
		return "INSERT INTO " + table + " (vt, message) VALUES (clock_timestamp() - interval '1 second', '{}')"
	}
	return []hotStatement{{
		name: "CreateTasks", source: "orchestration/create_insert.go (createSetSQLText): the tasks of a shared creation, with their steps, edges, history and root messages",
		match: sqlcNamed("CreateTasks"), takesUUIDs: true,
		// The tasks and their steps go; the edges and transitions left
		// behind cannot collide with the new ones, whose step uuids and ids
		// are new.
		rewind: `WITH steps AS (DELETE FROM tasker.workflow_steps WHERE task_uuid = ANY($1::uuid[]))
DELETE FROM tasker.tasks WHERE task_uuid = ANY($1::uuid[])`,
	}, {
		name: "the claim", source: "orchestration/dispatch/claim.go (claimSQL): a worker claims a batch of steps and loads their inputs",
		match: func(sql string) bool { return strings.HasPrefix(sql, "WITH RECURSIVE wanted AS (") }, takesUUIDs: true,
		rewind: `UPDATE tasker.workflow_steps SET state = 'enqueued', attempts = attempts - 1, claimed_by = NULL,
    claim_expires_at = NULL, started_at = NULL, completed_at = NULL, results = NULL
WHERE step_uuid = ANY($1::uuid[])`,
	}, {
		name: "the outcomes", source: "orchestration/dispatch/record.go (recordBatchSQL): a worker stores a batch of outcomes and tells the orchestrator",
		match: func(sql string) bool {
			return strings.HasPrefix(sql, "WITH input AS MATERIALIZED (") && strings.Contains(sql, stepQueue)
		}, takesUUIDs: true,
		rewind: `UPDATE tasker.workflow_steps s SET state = 'in_progress', results = NULL, completed_at = NULL,
    claim_expires_at = now() + interval '1 minute',
    claimed_by = (SELECT t.actor FROM tasker.step_transitions t
                  WHERE t.task_uuid = s.task_uuid AND t.step_uuid = s.step_uuid AND t.to_state = 'in_progress' ORDER BY t.id DESC LIMIT 1)
WHERE s.step_uuid = ANY($1::uuid[])`,
	}, {
		name: "ReleaseChildren", source: "internal/dbsqlc/steps.sql: the orchestrator releases a completed step's children",
		match: sqlcNamed("ReleaseChildren"), takesUUIDs: true,
		rewind: `UPDATE tasker.workflow_steps s SET state = 'pending', unmet_dependencies = 1, enqueued_at = NULL
WHERE s.step_uuid IN (SELECT e.to_step_uuid FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = ANY($1::uuid[]))`,
	}, {
		name: "queue read " + stepQueue, source: "orchestration/queue/direct.go: a worker reads its step queue",
		match: readOf(stepQueue), rewind: requeue(stepQueue),
	}, {
		name: "queue read " + resultsQueue, source: "orchestration/queue/direct.go: the orchestrator reads the results queue",
		match: readOf(resultsQueue), rewind: requeue(resultsQueue),
	}}
}

// sqlcNamed matches the sqlc query of that name (internal/dbsqlc).
func sqlcNamed(name string) func(string) bool {
	prefix := "-- name: " + name + " "
	return func(sql string) bool { return strings.HasPrefix(sql, prefix) }
}

// tracer is a pgx.QueryTracer that keeps the text of each hot statement and
// the arguments of samplesKept of its calls, sampled uniformly (reservoir
// sampling): the last calls of a run are not typical, e.g. the releases of
// steps without children.
type tracer struct {
	hot []hotStatement
	// index caches which hot statement a text is (-1 for none).
	index   sync.Map
	mu      sync.Mutex
	sql     []string
	calls   []int
	samples [][][]any
}

func newTracer(hot []hotStatement) *tracer {
	n := len(hot)
	return &tracer{hot: hot, sql: make([]string, n), calls: make([]int, n), samples: make([][][]any, n)}
}

// TraceQueryStart records the call's arguments when it is a hot statement.
func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	t.record(data.SQL, data.Args)
	return ctx
}

// TraceQueryEnd does nothing.
func (t *tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart does nothing: the statements of a batch (a pipeline, as
// the engine sends its creations) come one by one to TraceBatchQuery.
func (t *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

// TraceBatchQuery records the call's arguments when it is a hot statement.
func (t *tracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	t.record(data.SQL, data.Args)
}

// TraceBatchEnd does nothing.
func (t *tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// record keeps a call's text and, in the sample, its arguments when it is
// a hot statement.
func (t *tracer) record(sql string, callArgs []any) {
	i := t.lookup(sql)
	if i < 0 {
		return
	}
	args := append([]any(nil), callArgs...)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sql[i] = sql
	t.calls[i]++
	if len(t.samples[i]) < samplesKept {
		t.samples[i] = append(t.samples[i], args)
	} else if j := rand.IntN(t.calls[i]); j < samplesKept { //nolint:gosec // a sample, not a secret
		t.samples[i][j] = args
	}
}

// lookup returns the index of the hot statement sql is, or -1.
func (t *tracer) lookup(sql string) int {
	if i, ok := t.index.Load(sql); ok {
		return i.(int) //nolint:forcetypeassert // only ints are stored
	}
	i := -1
	for j, h := range t.hot {
		if h.match(sql) {
			i = j
			break
		}
	}
	t.index.Store(sql, i)
	return i
}

// explainName is the prepared statement that EXPLAIN EXECUTE runs.
const explainName = "tasker_profile_explain"

// explain prints the custom and generic plans of each hot statement, run
// with the arguments of its heaviest recorded call.
func (p *profiler) explain(ctx context.Context) error {
	fmt.Fprintf(p.out, "\nEXPLAIN (ANALYZE, BUFFERS) of the hottest statements, each with the arguments of the longest of %d calls sampled from the run,\n"+
		"in a transaction rolled back, after its rows were put back into the state it expects (see README.md):\n", samplesKept)
	for i, h := range p.tracer.hot {
		p.tracer.mu.Lock()
		sql, samples := p.tracer.sql[i], p.tracer.samples[i]
		p.tracer.mu.Unlock()
		fmt.Fprintf(p.out, "\n== %s — %s\n", h.name, h.source)
		if sql == "" {
			fmt.Fprintln(p.out, "   (not run during the measured part)")
			continue
		}
		if err := p.explainOne(ctx, h, sql, samples); err != nil {
			return fmt.Errorf("explaining %s: %w", h.name, err)
		}
	}
	return nil
}

// explainOne explains one statement: every sample with a custom plan to
// find the heaviest, then that one's custom and generic plans.
func (p *profiler) explainOne(ctx context.Context, h hotStatement, sql string, samples [][]any) (err error) {
	sd, err := p.db.Prepare(ctx, explainName, sql)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.db.Deallocate(context.WithoutCancel(ctx), explainName)) }()
	var best []string
	var bestArgs []any
	bestMs := -1.0
	for _, args := range samples {
		literals, err := p.literals(sd.ParamOIDs, args)
		if err != nil {
			return err
		}
		plan, err := p.explainPlan(ctx, h, args, literals, "force_custom_plan")
		if err != nil {
			return err
		}
		if ms := executionMs(plan); plan != nil && ms > bestMs {
			best, bestArgs, bestMs = literals, args, ms
		}
	}
	if best == nil {
		fmt.Fprintln(p.out, "   (no recorded call touches any row once rewound)")
		return nil
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		plan, err := p.explainPlan(ctx, h, bestArgs, best, mode)
		if err != nil {
			return err
		}
		fmt.Fprintf(p.out, "-- plan_cache_mode = %s\n", mode)
		for _, line := range plan {
			fmt.Fprintln(p.out, "   "+line)
		}
	}
	return nil
}

// explainPlan rewinds the statement's rows and explains it with the given
// arguments (as SQL literals) and plan cache mode, in a transaction that
// it rolls back. It returns no plan when the rewind touched no row.
func (p *profiler) explainPlan(ctx context.Context, h hotStatement, args []any, literals []string, mode string) (plan []string, err error) {
	tx, err := p.db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, tx.Rollback(context.WithoutCancel(ctx))) }()
	var rewound int64 = 1
	if h.takesUUIDs {
		tag, err := tx.Exec(ctx, h.rewind, uuidsOf(args))
		if err != nil {
			return nil, fmt.Errorf("rewinding: %w", err)
		}
		rewound = tag.RowsAffected()
	} else if _, err := tx.Exec(ctx, h.rewind); err != nil {
		return nil, fmt.Errorf("rewinding: %w", err)
	}
	if rewound == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = "+mode); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) EXECUTE "+explainName+"("+strings.Join(literals, ", ")+")",
		pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, err
	}
	var line string
	_, err = pgx.ForEachRow(rows, []any{&line}, func() error {
		plan = append(plan, line)
		return nil
	})
	return plan, err
}

// literals renders the arguments as SQL literals of the parameters' types.
func (p *profiler) literals(oids []uint32, args []any) ([]string, error) {
	if len(oids) != len(args) {
		return nil, fmt.Errorf("%d arguments for %d parameters", len(args), len(oids))
	}
	out := make([]string, len(args))
	for i, arg := range args {
		buf, err := p.db.TypeMap().Encode(oids[i], pgtype.TextFormatCode, arg, nil)
		if err != nil {
			return nil, fmt.Errorf("argument $%d: %w", i+1, err)
		}
		out[i] = "NULL"
		if buf != nil {
			out[i] = "'" + strings.ReplaceAll(string(buf), "'", "''") + "'"
		}
	}
	return out, nil
}

// uuidsOf returns the arguments that are UUIDs, and the UUIDs in the
// arguments that are slices (a batch statement's arrays).
func uuidsOf(args []any) []string {
	var ids []string
	add := func(arg any) {
		if s, ok := arg.(fmt.Stringer); ok {
			if id, err := uuid.Parse(s.String()); err == nil {
				ids = append(ids, id.String())
			}
		}
	}
	for _, arg := range args {
		if v := reflect.ValueOf(arg); v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8 {
			for i := range v.Len() {
				add(v.Index(i).Interface())
			}
			continue
		}
		add(arg)
	}
	return ids
}

// executionMs returns the "Execution Time" of an EXPLAIN ANALYZE, or -1.
func executionMs(plan []string) float64 {
	for _, line := range plan {
		if rest, ok := strings.CutPrefix(line, "Execution Time: "); ok {
			if ms, err := strconv.ParseFloat(strings.TrimSuffix(rest, " ms"), 64); err == nil {
				return ms
			}
		}
	}
	return -1
}
