package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// workflow is a sample template the benchmark runs.
type workflow struct {
	// label names it in the report.
	label string
	// namespace and name identify the template; contextFile is its sample
	// context in config/samples/contexts.
	namespace, name, contextFile string
}

// The three workflows the benchmark runs.
var (
	linearWorkflow  = workflow{label: "linear", namespace: "linear_workflow", name: "mathematical_sequence", contextFile: "linear.json"}
	mixedWorkflow   = workflow{label: "mixed-DAG", namespace: "mixed_dag_workflow", name: "complex_dag", contextFile: "mixed_dag.json"}
	diamondWorkflow = workflow{label: "diamond", namespace: "diamond_workflow", name: "diamond_pattern", contextFile: "diamond.json"}
)

// request returns the POST /v1/tasks body of the workflow, with its sample
// context.
func (w workflow) request() (api.CreateTaskRequest, error) {
	dir, err := harness.SamplesDir()
	if err != nil {
		return api.CreateTaskRequest{}, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "contexts", w.contextFile))
	if err != nil {
		return api.CreateTaskRequest{}, err
	}
	return api.CreateTaskRequest{Namespace: w.namespace, Name: w.name, Context: json.RawMessage(data), Initiator: "bench"}, nil
}

// taskTiming is what the latency phase learned about one task. Every time
// is wall-clock time of this machine, the clock PostgreSQL uses too.
type taskTiming struct {
	id uuid.UUID
	// start is taken just before the POST, created once it answered.
	start, created time.Time
	// detected is when the poll saw the task complete.
	detected time.Time
	// txStart is the task's completed_at: now(), the start of the
	// transaction that completed it.
	txStart time.Time
	// commit is the commit timestamp of that transaction.
	commit time.Time
}

// latencyPhase runs linear and then mixed-DAG tasks one at a time on one
// orchestrator and one worker, and measures each task end to end and each
// of its steps' dispatch.
func (b *bench) latencyPhase(ctx context.Context) (_ *latencyResult, err error) {
	fmt.Fprintf(b.out, "\nlatency: %d linear and %d mixed-DAG tasks one at a time (after %d of each unmeasured), %d orchestrator(s), 1 worker\n",
		b.cfg.linear, b.cfg.mixed, b.cfg.warmup, b.cfg.orchestrators)
	p, err := b.startPhase(ctx, "latency", 1)
	defer func() { err = errors.Join(err, b.closePhase(ctx, p)) }()
	if err != nil {
		return nil, err
	}
	for _, w := range []workflow{linearWorkflow, mixedWorkflow} {
		if _, err := b.runSequential(ctx, p, w, b.cfg.warmup); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	worker := p.sys.Workers[0]
	metricBefore, metricErr := scrapeDispatch(ctx, worker.Addr)
	if err := b.begin(ctx, p); err != nil {
		return nil, err
	}
	linear, err := b.runSequential(ctx, p, linearWorkflow, b.cfg.linear)
	if err != nil {
		return nil, err
	}
	mixed, err := b.runSequential(ctx, p, mixedWorkflow, b.cfg.mixed)
	if err != nil {
		return nil, err
	}
	metricAfter, err := scrapeDispatch(ctx, worker.Addr)
	metricErr = errors.Join(metricErr, err)
	res := &latencyResult{Linear: summarizeTasks(linearWorkflow.label, linear), Mixed: summarizeTasks(mixedWorkflow.label, mixed)}
	if res.Phase, res.Processes, err = b.endPhase(ctx, p); err != nil {
		return nil, err
	}
	steps, err := readStepTimelines(ctx, p.conn, append(slices.Clone(res.Linear.ids), res.Mixed.ids...))
	if err != nil {
		return nil, err
	}
	res.Dispatch = summarizeDispatch(steps)
	res.Dispatch.addWorkerMetric(metricBefore, metricAfter, metricErr)
	res.Breakdown = summarizeBreakdown(steps, linear, mixed)
	fmt.Fprintf(b.out, "  done in %.1fs; %s\n", res.Phase.Seconds, res.Phase.host())
	bd := res.Breakdown
	fmt.Fprintf(b.out, "  p50 between commits: POST → task created and root steps enqueued %s; per step: enqueue → claim %s, "+
		"claim → result recorded %s, recorded → settled by the orchestrator %s\n",
		format(bd.Create.P50Ms, "ms"), format(bd.Dispatch.P50Ms, "ms"), format(bd.Run.P50Ms, "ms"), format(bd.Settle.P50Ms, "ms"))
	return res, nil
}

// runSequential creates n tasks of the workflow one after the other, each
// once the previous one is complete, and times each.
func (b *bench) runSequential(ctx context.Context, p *phase, w workflow, n int) ([]taskTiming, error) {
	req, err := w.request()
	if err != nil {
		return nil, err
	}
	timings := make([]taskTiming, 0, n)
	for range n {
		t, err := timeTask(ctx, p.clients[0], p.conn, req, b.cfg.poll)
		if err != nil {
			return nil, fmt.Errorf("%s task: %w", w.label, err)
		}
		timings = append(timings, t)
	}
	return timings, nil
}

// taskDoneQuery reads a task's state and, once it is complete, when the
// transaction that completed it started (completed_at = now()) and
// committed. xmin is that transaction: nothing updates a task after it
// completes.
const taskDoneQuery = `SELECT state, completed_at, pg_xact_commit_timestamp(xmin)
FROM tasker.tasks WHERE task_uuid = $1`

// taskTimeout bounds one latency task.
const taskTimeout = time.Minute

// timeTask creates a task and polls the database every poll until it is
// complete. The poll only learns that the task is done; when it was done
// comes from the database.
func timeTask(ctx context.Context, c *api.Client, conn *pgx.Conn, req api.CreateTaskRequest, poll time.Duration) (taskTiming, error) {
	ctx, cancel := context.WithTimeout(ctx, taskTimeout)
	defer cancel()
	var t taskTiming
	t.start = time.Now()
	task, err := c.CreateTask(ctx, req)
	if err != nil {
		return t, err
	}
	t.id, t.created = task.UUID, time.Now()
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		var state string
		var txStart, commit *time.Time
		if err := conn.QueryRow(ctx, taskDoneQuery, task.UUID).Scan(&state, &txStart, &commit); err != nil {
			return t, err
		}
		switch {
		case state == "complete" && txStart != nil && commit != nil:
			t.detected, t.txStart, t.commit = time.Now(), *txStart, *commit
			return t, t.check()
		case state == "complete":
			return t, fmt.Errorf("task %s is complete without completed_at or commit timestamp (is track_commit_timestamp on?)", task.UUID)
		case isFailed(state):
			return t, fmt.Errorf("task %s ended %s", task.UUID, state)
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return t, fmt.Errorf("task %s not complete (%s): %w", task.UUID, state, ctx.Err())
		}
	}
}

// check verifies that the database's times fall between the POST and the
// poll that saw the task complete, as they must on one clock.
func (t taskTiming) check() error {
	if t.txStart.Before(t.start) || t.commit.Before(t.txStart) || t.detected.Before(t.commit) {
		return fmt.Errorf("task %s: times out of order: POST %s, completing transaction started %s, committed %s, seen %s "+
			"(did the wall clock jump?)", t.id, t.start.Format(time.RFC3339Nano), t.txStart.Format(time.RFC3339Nano),
			t.commit.Format(time.RFC3339Nano), t.detected.Format(time.RFC3339Nano))
	}
	return nil
}

// isFailed reports whether a task state means the task will not complete.
func isFailed(state string) bool {
	switch state {
	case "blocked_by_failures", "error", "cancelled", "resolved_manually":
		return true
	}
	return false
}
