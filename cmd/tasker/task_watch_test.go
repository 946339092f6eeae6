package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

// fakeClock starts at the sample creation time and moves only when a watch
// waits, by exactly the time it waits.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// linearSnapshot is a four-step linear task in the given task state with
// its steps in the given states.
func linearSnapshot(state orchestration.TaskState, steps ...orchestration.StepState) *api.Task {
	names := []string{"linear_step_1", "linear_step_2", "linear_step_3", "linear_step_4"}
	task := newAPITask(orchestration.Task{
		UUID: sampleTaskUUID, Namespace: "linear_workflow", Name: "mathematical_sequence", Version: "1.0.0",
		State: state, CreatedAt: sampleCreated,
	})
	for i, s := range steps {
		step := orchestration.Step{Name: names[i], State: s, MaxAttempts: 3}
		if s != orchestration.StepPending && s != orchestration.StepEnqueued {
			step.Attempts = 1
		}
		if s.Satisfied() {
			task.CompletedSteps++
			step.Results = json.RawMessage(`{"value": ` + []string{"36", "1296", "1679616", "2821109907456"}[i] + `}`)
		}
		task.Steps = append(task.Steps, step)
	}
	task.TotalSteps = len(steps)
	return task
}

// watchSnapshots runs a watcher over the snapshots, one per poll (the last
// one repeats), and returns its output and result.
func watchSnapshots(t *testing.T, live bool, snapshots ...*api.Task) (string, *api.Task, error) {
	t.Helper()
	var out bytes.Buffer
	polls := 0
	w := &watcher{
		fetch: func(context.Context) (*api.Task, error) {
			snapshot := snapshots[min(polls, len(snapshots)-1)]
			polls++
			return snapshot, nil
		},
		interval: 400 * time.Millisecond,
		clock:    &fakeClock{now: sampleCreated},
		out:      &out,
		live:     live,
	}
	task, err := w.run(t.Context())
	return out.String(), task, err
}

const (
	pending    = orchestration.StepPending
	enqueued   = orchestration.StepEnqueued
	inProgress = orchestration.StepInProgress
	complete   = orchestration.StepComplete
)

func TestWatchPrintsALinePerChange(t *testing.T) {
	t.Parallel()
	running := orchestration.TaskStepsInProcess
	out, task, err := watchSnapshots(t, false,
		linearSnapshot(running, enqueued, pending, pending, pending),
		linearSnapshot(running, inProgress, pending, pending, pending),
		linearSnapshot(running, inProgress, pending, pending, pending), // no change: no line
		linearSnapshot(running, complete, complete, inProgress, pending),
		linearSnapshot(running, complete, complete, complete, inProgress),
		linearSnapshot(orchestration.TaskComplete, complete, complete, complete, complete),
	)
	require.NoError(t, err)
	require.Equal(t, orchestration.TaskComplete, task.State)
	require.Equal(t, `[00:00.0] 0/4 steps complete · steps_in_process · queued: linear_step_1
[00:00.4] 0/4 steps complete · steps_in_process · linear_step_1 → in_progress · running: linear_step_1
[00:01.2] 2/4 steps complete · steps_in_process · linear_step_1 → complete, linear_step_2 → complete, linear_step_3 → in_progress · running: linear_step_3
[00:01.6] 3/4 steps complete · steps_in_process · linear_step_3 → complete, linear_step_4 → in_progress · running: linear_step_4
[00:02.0] 4/4 steps complete · complete · linear_step_4 → complete
`, out)
}

func TestWatchOnATerminalRedrawsTheStatusLine(t *testing.T) {
	t.Parallel()
	running := linearSnapshot(orchestration.TaskStepsInProcess, inProgress, pending, pending, pending)
	out, _, err := watchSnapshots(t, true, running, running, running,
		linearSnapshot(orchestration.TaskComplete, complete, complete, complete, complete))
	require.NoError(t, err)
	redraw := "\r\x1b[K"
	require.Equal(t, "[00:00.0] 0/4 steps complete · steps_in_process · running: linear_step_1\n"+
		"[00:00.4] 0/4 steps complete · steps_in_process · running: linear_step_1"+redraw+
		"[00:00.8] 0/4 steps complete · steps_in_process · running: linear_step_1"+redraw+
		"[00:01.2] 4/4 steps complete · complete · linear_step_1 → complete, linear_step_2 → complete, linear_step_3 → complete, linear_step_4 → complete\n", out)
}

func TestWatchDescribesRetries(t *testing.T) {
	t.Parallel()
	first := linearSnapshot(orchestration.TaskStepsInProcess, inProgress, pending, pending, pending)
	retrying := linearSnapshot(orchestration.TaskWaitingForRetry, orchestration.StepWaitingForRetry, pending, pending, pending)
	retrying.Steps[0].Error = &dispatch.StepError{Code: "FLAKY", Message: "try again", Retryable: true}
	again := linearSnapshot(orchestration.TaskStepsInProcess, inProgress, pending, pending, pending)
	again.Steps[0].Attempts = 2
	failed := linearSnapshot(orchestration.TaskBlockedByFailures, orchestration.StepError, pending, pending, pending)
	failed.Steps[0].Attempts = 2
	failed.Steps[0].Error = &dispatch.StepError{Code: "BAD_INPUT", Message: "even_number is odd"}

	out, task, err := watchSnapshots(t, false, first, retrying, again, failed)
	require.NoError(t, err, "blocked_by_failures ends the watch")
	require.Contains(t, out, "· waiting_for_retry · linear_step_1 → waiting_for_retry (attempt 1/3 failed: FLAKY)\n")
	require.Contains(t, out, "· linear_step_1 → in_progress (attempt 2/3) ·")
	require.Contains(t, out, "· blocked_by_failures · linear_step_1 → error (BAD_INPUT)\n")
	require.EqualError(t, watchOutcome(task), "task ended blocked_by_failures: step linear_step_1 failed: BAD_INPUT: even_number is odd")
}

func TestWatchPollFailures(t *testing.T) {
	t.Parallel()
	running := linearSnapshot(orchestration.TaskStepsInProcess, inProgress, pending, pending, pending)
	done := linearSnapshot(orchestration.TaskComplete, complete, complete, complete, complete)
	blip := errors.New("connection reset")
	run := func(results ...any) error {
		polls := 0
		w := &watcher{interval: time.Second, clock: &fakeClock{}, out: &bytes.Buffer{}, fetch: func(context.Context) (*api.Task, error) {
			r := results[polls]
			polls++
			if err, ok := r.(error); ok {
				return nil, err
			}
			return r.(*api.Task), nil
		}}
		_, err := w.run(t.Context())
		return err
	}

	t.Run("a failing first poll fails at once", func(t *testing.T) {
		t.Parallel()
		require.ErrorIs(t, run(blip), blip)
	})
	t.Run("blips after the first snapshot are retried", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, run(running, blip, blip, running, blip, done))
	})
	t.Run("too many failures in a row give up", func(t *testing.T) {
		t.Parallel()
		require.ErrorIs(t, run(running, blip, blip, blip), blip)
	})
	t.Run("client errors are not retried", func(t *testing.T) {
		t.Parallel()
		notFound := &api.Error{Status: 404, Code: "NOT_FOUND", Message: "no such task"}
		require.ErrorIs(t, run(running, notFound), notFound)
	})
}

func TestWatchSummaryAndOutcome(t *testing.T) {
	t.Parallel()
	done := linearSnapshot(orchestration.TaskComplete, complete, complete, complete, complete)
	duration := int64(1234)
	done.DurationMs = &duration
	require.Equal(t, "task "+sampleTaskUUID.String()+" complete after 1.234s\nresult of linear_step_4: {\"value\":2821109907456}\n", renderWatchSummary(done))
	require.NoError(t, watchOutcome(done))

	resolved := linearSnapshot(orchestration.TaskResolvedManually, complete, orchestration.StepResolvedManually, complete, complete)
	require.NoError(t, watchOutcome(resolved))

	blocked := sampleTask()
	require.Equal(t, "task "+sampleTaskUUID.String()+" blocked_by_failures after 2.345s\n"+
		"  diamond_branch_b failed after 3/3 attempts: TIMEOUT: took longer than 1s\n", renderWatchSummary(blocked))
	require.EqualError(t, watchOutcome(blocked), "task ended blocked_by_failures: step diamond_branch_b failed: TIMEOUT: took longer than 1s")

	cancelled := linearSnapshot(orchestration.TaskCancelled, complete, orchestration.StepCancelled, orchestration.StepCancelled, orchestration.StepCancelled)
	require.EqualError(t, watchOutcome(cancelled), "task ended cancelled")
}

func TestFormatElapsed(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                         "00:00.0",
		1249 * time.Millisecond:   "00:01.2",
		75 * time.Second:          "01:15.0",
		time.Hour + 2*time.Minute: "1:02:00.0",
		-time.Second:              "00:00.0",
	} {
		require.Equal(t, want, formatElapsed(d))
	}
}
