package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// noopArgs are the arguments of the benchmark's job, which does nothing.
type noopArgs struct {
	// N numbers the job; it makes each job's arguments distinct.
	N int `json:"n"`
}

// Kind names the job kind.
func (noopArgs) Kind() string { return "tasker_bench_noop" }

// noopWorker works a job by doing nothing.
type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

// Work returns at once.
func (*noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// newClient returns a River client that works the default queue with the
// no-op worker.
func newClient(driver *riverpgxv5.Driver, cfg config) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &noopWorker{}); err != nil {
		return nil, err
	}
	return river.NewClient(driver, &river.Config{
		FetchCooldown:     cfg.fetchCooldown,
		FetchPollInterval: cfg.fetchPollInterval,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.maxWorkers}},
		Workers:           workers,
	})
}

// insertBatch is how many jobs one InsertManyFast call inserts.
const insertBatch = 5_000

// insertJobs inserts n no-op jobs with InsertManyFast (COPY FROM).
func insertJobs(ctx context.Context, client *river.Client[pgx.Tx], n int) error {
	params := make([]river.InsertManyParams, 0, insertBatch)
	for i := range n {
		params = append(params, river.InsertManyParams{Args: noopArgs{N: i}})
		if len(params) == insertBatch || i == n-1 {
			if _, err := client.InsertManyFast(ctx, params); err != nil {
				return fmt.Errorf("inserting jobs: %w", err)
			}
			params = params[:0]
		}
	}
	return nil
}

// burnDown starts the client, waits for the end event of every one of the n
// jobs and returns the time from Start to the last of them. A job that
// fails or is cancelled is an error.
func burnDown(ctx context.Context, client *river.Client[pgx.Tx], n int) (time.Duration, error) {
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{
		// Large enough that no event is ever dropped.
		ChanSize: n + 1,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer cancel()
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return 0, err
	}
	var last time.Time
	var done, failed int
	for done < n {
		select {
		case ev := <-events:
			if ev == nil {
				return 0, fmt.Errorf("subscription closed after %d of %d jobs", done, n)
			}
			last = time.Now()
			done++
			if ev.Kind != river.EventKindJobCompleted {
				failed++
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d jobs worked: %w", done, n, ctx.Err())
		}
	}
	if err := client.Stop(ctx); err != nil {
		return 0, fmt.Errorf("stopping the client: %w", err)
	}
	if failed > 0 {
		return 0, fmt.Errorf("%d of %d no-op jobs did not complete", failed, n)
	}
	return last.Sub(start), nil
}

// checkCompleted checks that the database holds n completed jobs.
func checkCompleted(ctx context.Context, pool *pgxpool.Pool, n int) error {
	var completed int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&completed); err != nil {
		return err
	}
	if completed != n {
		return fmt.Errorf("%d jobs completed in river_job, want %d", completed, n)
	}
	return nil
}
