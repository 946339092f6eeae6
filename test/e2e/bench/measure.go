package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// latencyPollInterval is how often the latency run asks whether its task
// is complete.
const latencyPollInterval = 2 * time.Millisecond

// Requests of the two measurements.
var (
	linearRequest = api.CreateTaskRequest{
		Namespace: "linear_workflow", Name: "mathematical_sequence", Context: json.RawMessage(`{"even_number": 6}`),
	}
	diamondRequest = api.CreateTaskRequest{
		Namespace: "diamond_workflow", Name: "diamond_pattern", Context: json.RawMessage(`{"even_number": 6}`),
	}
)

// latency sums up the sequential linear runs.
type latency struct {
	runs               int
	min, p50, p95, max time.Duration
}

// throughput sums up the concurrent diamond tasks.
type throughput struct {
	tasks, steps int
	// submitted is the time taken by the submits, wall the time from the
	// first submit to the last completion.
	submitted, wall time.Duration
}

// measureLatency runs one warm-up linear task, then runs linear tasks one
// after the other and times each from POST to the GET that sees it
// complete.
func measureLatency(ctx context.Context, sys *harness.System, runs int) (latency, error) {
	c := sys.Client(0)
	durations := make([]time.Duration, 0, runs)
	for i := range runs + 1 {
		d, err := linearOnce(ctx, c)
		if err != nil {
			return latency{}, err
		}
		if i > 0 { // the first run warms the connections up
			durations = append(durations, d)
		}
	}
	slices.Sort(durations)
	return latency{
		runs: runs, min: durations[0], max: durations[len(durations)-1],
		p50: percentile(durations, 0.50), p95: percentile(durations, 0.95),
	}, nil
}

// linearOnce creates a linear task and polls it every 2 ms until it is
// complete; it returns the time taken.
func linearOnce(ctx context.Context, c *api.Client) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	task, err := c.CreateTask(ctx, linearRequest)
	if err != nil {
		return 0, err
	}
	ticker := time.NewTicker(latencyPollInterval)
	defer ticker.Stop()
	for {
		got, err := c.GetTask(ctx, task.UUID)
		switch {
		case err != nil:
			return 0, err
		case got.State == "complete":
			return time.Since(start), nil
		case got.State.Terminal() || got.State == "blocked_by_failures":
			return 0, fmt.Errorf("task %s ended %s", got.UUID, got.State)
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return 0, fmt.Errorf("task %s not complete: %w", task.UUID, ctx.Err())
		}
	}
}

// percentile returns the nearest-rank percentile p of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

// measureThroughput submits cfg.tasks diamond tasks from cfg.submitters
// goroutines to the orchestrators in turn, waits until all are complete
// (watching the database), and returns the wall time from the first submit
// to the last completion.
func measureThroughput(ctx context.Context, sys *harness.System, databaseURL string, cfg config) (throughput, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return throughput{}, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	start := time.Now()
	ids, err := submitConcurrently(ctx, sys, cfg.tasks, cfg.submitters)
	if err != nil {
		return throughput{}, err
	}
	submitted := time.Since(start)
	last, err := waitComplete(ctx, conn, ids)
	if err != nil {
		return throughput{}, err
	}
	var steps int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM tasker.workflow_steps WHERE task_uuid = ANY($1)`, ids).Scan(&steps); err != nil {
		return throughput{}, err
	}
	return throughput{tasks: len(ids), steps: steps, submitted: submitted, wall: last.Sub(start)}, nil
}

// submitConcurrently creates n diamond tasks from the given number of
// goroutines.
func submitConcurrently(ctx context.Context, sys *harness.System, n, goroutines int) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < n; i += goroutines {
				task, err := sys.NextClient().CreateTask(ctx, diamondRequest)
				if err != nil {
					errs[i] = err
					continue
				}
				ids[i] = task.UUID
			}
		})
	}
	wg.Wait()
	return ids, errors.Join(errs...)
}

// waitComplete polls the database every 10 ms until every task is
// complete, and returns the latest completion time.
func waitComplete(ctx context.Context, conn *pgx.Conn, ids []uuid.UUID) (time.Time, error) {
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for {
		var complete, failed int
		var last *time.Time
		err := conn.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE state = 'complete'),
			       count(*) FILTER (WHERE state IN ('blocked_by_failures', 'error', 'cancelled')),
			       max(completed_at)
			FROM tasker.tasks WHERE task_uuid = ANY($1)`, ids).Scan(&complete, &failed, &last)
		switch {
		case err != nil:
			return time.Time{}, err
		case failed > 0:
			return time.Time{}, fmt.Errorf("%d tasks failed", failed)
		case complete == len(ids) && last != nil:
			return *last, nil
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d of %d tasks complete: %w", complete, len(ids), ctx.Err())
		}
	}
}

// printReport prints the figures as two small tables.
func printReport(cfg config, l latency, tp throughput) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	wall := tp.wall.Seconds()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintln(w)
	row(w, "measurement", "min ms", "p50 ms", "p95 ms", "max ms")
	row(w, fmt.Sprintf("linear task, POST to complete (%d sequential runs)", l.runs),
		ms(l.min), ms(l.p50), ms(l.p95), ms(l.max))
	fmt.Fprintln(w)
	row(w, "measurement", "wall s", "tasks/s", "steps/s", "submit s")
	row(w, fmt.Sprintf("%d diamond tasks at once (%d submitters)", tp.tasks, cfg.submitters),
		fmt.Sprintf("%.2f", wall), fmt.Sprintf("%.1f", float64(tp.tasks)/wall),
		fmt.Sprintf("%.1f", float64(tp.steps)/wall), fmt.Sprintf("%.2f", tp.submitted.Seconds()))
	_ = w.Flush()
}

// row writes one table row, each cell between bars.
func row(w io.Writer, cells ...string) {
	for _, c := range cells {
		fmt.Fprintf(w, "| %s\t", c)
	}
	fmt.Fprintln(w, "|")
}
