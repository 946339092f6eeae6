package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// tag starts every statement of the profiler's own connection, so that the
// report can leave them out of pg_stat_statements.
const tag = "/* tasker-profile */ "

// completePoll is how often the throughput workload counts the complete
// tasks; latencyPoll how often the latency workload checks its task. The
// figures come from commit timestamps, not from the polls.
const (
	completePoll = 100 * time.Millisecond
	latencyPoll  = 2 * time.Millisecond
)

// failedStates are the task states that end a task without completing it.
var failedStates = []string{"blocked_by_failures", "error", "cancelled", "resolved_manually"}

// workload is what the profiled system is made to do.
type workload interface {
	// describe says what the measured part does.
	describe() string
	// measured is how many tasks the measured part runs.
	measured() int
	// run runs n tasks and measures them.
	run(ctx context.Context, n int) (*measurement, error)
}

// measurement is what a workload's run found.
type measurement struct {
	tasks, steps int
	// wall is from the first submit to the commit that completed the last
	// task; submitted until the last submit returned.
	wall, submitted time.Duration
	// endToEnd is each task's time from just before its submit to the
	// commit that completed it (the latency workload only).
	endToEnd []time.Duration
	// firstTransition is the highest step transition id before the run:
	// the run's transitions come after it.
	firstTransition int64
}

// workload returns the workload the flags ask for.
func (p *profiler) workload() workload {
	if p.cfg.latency > 0 {
		return &latencyWorkload{p: p}
	}
	return &throughputWorkload{p: p}
}

// namespace is the workload's namespace.
func (p *profiler) namespace() string {
	if p.cfg.latency > 0 {
		return "linear_workflow"
	}
	return "diamond_workflow"
}

// request returns a task request of the sample template of namespace,
// with its sample context (config/samples/contexts).
func request(namespace, name, contextFile string) (orchestration.CreateTaskRequest, error) {
	dir, err := harness.SamplesDir()
	if err != nil {
		return orchestration.CreateTaskRequest{}, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "contexts", contextFile))
	if err != nil {
		return orchestration.CreateTaskRequest{}, err
	}
	return orchestration.CreateTaskRequest{Namespace: namespace, Name: name, Context: json.RawMessage(data), Initiator: "profile"}, nil
}

// throughputWorkload submits diamond tasks together.
type throughputWorkload struct{ p *profiler }

func (w *throughputWorkload) describe() string {
	c := w.p.cfg
	return fmt.Sprintf("workload: %d diamond tasks (4 steps each) submitted together by %d goroutines, after %d unmeasured; "+
		"the engine and %d worker(s) of concurrency %d run in this process", c.tasks, c.submitters, c.warmup, c.workers, c.concurrency)
}

func (w *throughputWorkload) measured() int { return w.p.cfg.tasks }

func (w *throughputWorkload) run(ctx context.Context, n int) (*measurement, error) {
	if n == 0 {
		return &measurement{}, nil
	}
	req, err := request("diamond_workflow", "diamond_pattern", "diamond.json")
	if err != nil {
		return nil, err
	}
	p := w.p
	stepsBefore, err := p.count(ctx, "SELECT count(*) FROM tasker.workflow_steps")
	if err != nil {
		return nil, err
	}
	completeBefore, err := p.count(ctx, "SELECT count(*) FROM tasker.tasks WHERE state = 'complete'")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := submitAll(ctx, p.sys.engine, req, n, p.cfg.submitters); err != nil {
		return nil, err
	}
	m := &measurement{tasks: n, submitted: time.Since(start)}
	if err := p.waitComplete(ctx, completeBefore+n); err != nil {
		return nil, err
	}
	var last time.Time
	if err := p.db.QueryRow(ctx, tag+"SELECT max(pg_xact_commit_timestamp(xmin)) FROM tasker.tasks WHERE state = 'complete'").Scan(&last); err != nil {
		return nil, err
	}
	m.wall = last.Sub(start)
	steps, err := p.count(ctx, "SELECT count(*) FROM tasker.workflow_steps")
	m.steps = steps - stepsBefore
	return m, err
}

// submitAll creates n tasks from the given number of goroutines.
func submitAll(ctx context.Context, engine *orchestration.Engine, req orchestration.CreateTaskRequest, n, goroutines int) error {
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < n; i += goroutines {
				if _, err := engine.CreateTask(ctx, req); err != nil {
					errs[g] = fmt.Errorf("submitting task %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitComplete counts the complete tasks every completePoll until there
// are want. A task that failed is an error.
func (p *profiler) waitComplete(ctx context.Context, want int) error {
	ticker := time.NewTicker(completePoll)
	defer ticker.Stop()
	for {
		var complete, failed int
		err := p.db.QueryRow(ctx, tag+`SELECT count(*) FILTER (WHERE state = 'complete'), count(*) FILTER (WHERE state <> 'complete')
			FROM tasker.tasks WHERE state = ANY ('{complete}'::text[] || $1::text[])`, failedStates).Scan(&complete, &failed)
		switch {
		case err != nil:
			return err
		case failed > 0:
			return fmt.Errorf("%d tasks failed", failed)
		case complete >= want:
			return nil
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tasks complete: %w", complete, want, ctx.Err())
		}
	}
}

// count runs a query that returns one count.
func (p *profiler) count(ctx context.Context, sql string) (int, error) {
	var n int
	err := p.db.QueryRow(ctx, tag+sql).Scan(&n)
	return n, err
}

// latencyWorkload runs linear tasks one at a time.
type latencyWorkload struct{ p *profiler }

func (w *latencyWorkload) describe() string {
	c := w.p.cfg
	return fmt.Sprintf("workload: %d linear tasks (4 steps in a chain) one at a time, after %d unmeasured; "+
		"the engine and %d worker(s) of concurrency %d run in this process", c.latency, c.warmup, c.workers, c.concurrency)
}

func (w *latencyWorkload) measured() int { return w.p.cfg.latency }

func (w *latencyWorkload) run(ctx context.Context, n int) (*measurement, error) {
	req, err := request("linear_workflow", "mathematical_sequence", "linear.json")
	if err != nil {
		return nil, err
	}
	p := w.p
	m := &measurement{tasks: n}
	if err := p.db.QueryRow(ctx, tag+"SELECT coalesce(max(id), 0) FROM tasker.step_transitions").Scan(&m.firstTransition); err != nil {
		return nil, err
	}
	stepsBefore, err := p.count(ctx, "SELECT count(*) FROM tasker.workflow_steps")
	if err != nil {
		return nil, err
	}
	begun := time.Now()
	for range n {
		start := time.Now()
		task, err := p.sys.engine.CreateTask(ctx, req)
		if err != nil {
			return nil, err
		}
		done, err := p.waitTask(ctx, task.UUID)
		if err != nil {
			return nil, err
		}
		m.endToEnd = append(m.endToEnd, done.Sub(start))
	}
	m.wall = time.Since(begun)
	steps, err := p.count(ctx, "SELECT count(*) FROM tasker.workflow_steps")
	m.steps = steps - stepsBefore
	return m, err
}

// waitTask polls the task every latencyPoll until it is complete and
// returns the commit time of its completion. A task that failed is an
// error.
func (p *profiler) waitTask(ctx context.Context, id uuid.UUID) (time.Time, error) {
	for {
		var state string
		var committed *time.Time
		err := p.db.QueryRow(ctx, tag+"SELECT state, pg_xact_commit_timestamp(xmin) FROM tasker.tasks WHERE task_uuid = $1", id).Scan(&state, &committed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return time.Time{}, fmt.Errorf("task %s is gone", id)
		case err != nil:
			return time.Time{}, err
		case state == "complete" && committed != nil:
			return *committed, nil
		case state == "complete":
			return time.Time{}, errors.New("no commit timestamp for the task (is track_commit_timestamp on?)")
		}
		if slices.Contains(failedStates, state) {
			return time.Time{}, fmt.Errorf("task %s ended %s", id, state)
		}
		select {
		case <-time.After(latencyPoll):
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}
