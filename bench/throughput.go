package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// countPoll is how often a throughput round counts the complete tasks; the
// count only tells when to stop, the figures come from commit timestamps.
const countPoll = 100 * time.Millisecond

// progressEvery is how often a round reports its progress on stderr.
const progressEvery = 5 * time.Second

// throughputRound submits the diamond tasks together to fresh processes
// with the given number of workers and measures from the first submit to
// the commit of the last completion.
func (b *bench) throughputRound(ctx context.Context, rep, workers int) (_ *roundResult, err error) {
	name := fmt.Sprintf("throughput-%dw-%d", workers, rep)
	fmt.Fprintf(b.out, "\nthroughput (repetition %d of %d): %d diamond tasks submitted together by %d goroutines; %d orchestrator(s), %d worker(s) of --concurrency %d\n",
		rep, b.cfg.repeat, b.cfg.diamond, b.cfg.submitters, b.cfg.orchestrators, workers, b.cfg.concurrency)
	p, err := b.startPhase(ctx, name, workers)
	defer func() { err = errors.Join(err, b.closePhase(ctx, p)) }()
	if err != nil {
		return nil, err
	}
	req, err := diamondWorkflow.request()
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := b.begin(ctx, p); err != nil {
		return nil, err
	}
	first := time.Now()
	submitted, err := submitAll(ctx, p.hc, p.tasksURLs, body, b.cfg.diamond, b.cfg.submitters)
	if err != nil {
		return nil, err
	}
	if err := waitAllComplete(ctx, p.conn, b.cfg.diamond); err != nil {
		return nil, err
	}
	r := &roundResult{Repetition: rep, Workers: workers, Orchestrators: b.cfg.orchestrators, Concurrency: b.cfg.concurrency}
	if r.Phase, r.Processes, err = b.endPhase(ctx, p); err != nil {
		return nil, err
	}
	last, err := r.count(ctx, p.conn)
	if err != nil {
		return nil, err
	}
	r.SubmitSeconds = submitted.Sub(first).Seconds()
	r.WallSeconds = last.Sub(first).Seconds()
	r.StepsPerSecond = float64(r.Steps) / r.WallSeconds
	r.TasksPerSecond = float64(r.Tasks) / r.WallSeconds
	r.CPUPerStep = cpuPerStepOf(r)
	fmt.Fprintf(b.out, "  %d steps in %.2fs: %.0f steps/s; %s\n", r.Steps, r.WallSeconds, r.StepsPerSecond, r.Phase.host())
	return r, nil
}

// submitAll creates n tasks from the given number of goroutines, which
// POST body to the task endpoints in turn. It returns when the last POST
// was answered.
//
// The benchmark shares the machine with the system it measures, so its
// submitters do no more than a client must: they send one request encoded
// once, check the status and read the answer to its end without decoding
// it (api.Client would encode each request and decode each task with its
// steps: about a third of the benchmark's CPU). The latency phase uses
// api.Client, and every task is checked complete at the end of the round.
func submitAll(ctx context.Context, hc *http.Client, urls []string, body []byte, n, goroutines int) (time.Time, error) {
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < n; i += goroutines {
				if err := postTask(ctx, hc, urls[i%len(urls)], body); err != nil {
					errs[g] = fmt.Errorf("submitting task %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Now(), errors.Join(errs...)
}

// postTask POSTs one CreateTask body and expects 201 Created; the answer is
// read to its end, so that the connection is reused, and dropped.
func postTask(ctx context.Context, hc *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(answer))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// waitAllComplete counts the phase database's complete tasks every
// countPoll until there are n. A task that failed is an error.
func waitAllComplete(ctx context.Context, conn *pgx.Conn, n int) error {
	ticker := time.NewTicker(countPoll)
	defer ticker.Stop()
	lastReport := time.Now()
	for {
		var complete, failed int
		err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'complete'),
			count(*) FILTER (WHERE state IN ('blocked_by_failures', 'error', 'cancelled', 'resolved_manually'))
			FROM tasker.tasks`).Scan(&complete, &failed)
		switch {
		case err != nil:
			return err
		case failed > 0:
			return fmt.Errorf("%d tasks failed", failed)
		case complete >= n:
			return nil
		case time.Since(lastReport) >= progressEvery:
			fmt.Fprintf(os.Stderr, "  ... %d of %d tasks complete\n", complete, n)
			lastReport = time.Now()
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tasks complete: %w", complete, n, ctx.Err())
		}
	}
}

// count fills in the round's tasks and steps, checks that every one is
// complete, and returns the commit time of the last completion.
func (r *roundResult) count(ctx context.Context, conn *pgx.Conn) (time.Time, error) {
	var completeTasks, completeSteps int
	var last *time.Time
	err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'complete'), max(pg_xact_commit_timestamp(xmin)),
		(SELECT count(*) FROM tasker.workflow_steps), (SELECT count(*) FROM tasker.workflow_steps WHERE state = 'complete')
		FROM tasker.tasks`).Scan(&r.Tasks, &completeTasks, &last, &r.Steps, &completeSteps)
	switch {
	case err != nil:
		return time.Time{}, err
	case completeTasks != r.Tasks || completeSteps != r.Steps:
		return time.Time{}, fmt.Errorf("%d of %d tasks and %d of %d steps complete", completeTasks, r.Tasks, completeSteps, r.Steps)
	case last == nil:
		return time.Time{}, errors.New("no commit timestamp for the tasks (is track_commit_timestamp on?)")
	}
	return *last, nil
}
