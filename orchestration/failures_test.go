package orchestration

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

// The retry and failure paths: a step's own retry policy, handler-requested
// delays, permanent failures next to healthy branches, manual recovery and
// cancellation of a running task.

func TestRetryableFailureSucceedsOnThirdAttempt(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)
	ctx := t.Context()
	b.worker.handle("linear_step_2", func(claim *dispatch.Claim, input *dispatch.StepInput) dispatch.Outcome {
		if claim.Step.Attempts < 3 {
			return failure("GATEWAY_UNAVAILABLE", "the payment gateway is down", true)
		}
		return squareOfParents([]string{"linear_step_1"})(claim, input)
	})
	task := createTask(t, engine, def, `{"even_number": 6}`)
	drive(t, engine, b, frStepIn(t, b, task.UUID, "linear_step_2", StepEnqueued))

	// Two failed attempts, each one scheduled by the step's exponential
	// policy (base 5 ms, no jitter): 5 ms after attempt 1, 10 ms after 2.
	step2 := frStepRow(t, b, task.UUID, "linear_step_2")
	for _, round := range []struct {
		attempt int32
		delay   time.Duration
	}{{1, 5 * time.Millisecond}, {2, 10 * time.Millisecond}} {
		_, err := b.worker.runOnce(ctx)
		require.NoError(t, err)
		_, err = engine.ProcessResults(ctx)
		require.NoError(t, err)

		row := frStepRow(t, b, task.UUID, "linear_step_2")
		require.Equal(t, string(StepWaitingForRetry), row.State, "attempt %d", round.attempt)
		require.Equal(t, round.attempt, row.Attempts)
		require.NotNil(t, row.NextRetryAt)
		require.Equal(t, round.delay, row.NextRetryAt.Sub(row.UpdatedAt),
			"attempt %d: next_retry_at is the policy's delay after the transaction that scheduled it", round.attempt)
		failedAt := frTransitionTime(t, b, step2.StepUUID, string(StepEnqueuedAsErrorForOrchestration), round.attempt)
		require.GreaterOrEqual(t, row.NextRetryAt.Sub(failedAt), round.delay,
			"attempt %d: the retry is scheduled at least the policy's delay after the failure", round.attempt)
		require.Less(t, row.NextRetryAt.Sub(failedAt), round.delay+time.Second)
		current, err := engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskWaitingForRetry, current.State, "nothing else is in flight while the step waits")

		frSweepUntilRetried(t, engine)
		retriedAt := frTransitionTime(t, b, step2.StepUUID, string(StepEnqueued), round.attempt)
		require.False(t, retriedAt.Before(*row.NextRetryAt), "attempt %d: the retry was enqueued before its time", round.attempt)
	}

	drive(t, engine, b, finished(t, engine, task.UUID))
	task, err := engine.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskComplete, task.State)
	require.Equal(t, 3, task.Step("linear_step_2").Attempts)
	require.Nil(t, task.Step("linear_step_2").NextRetryAt)
	require.Equal(t, "2821109907456", stepValue(t, task, "linear_step_4"))

	history := frStepHistory(t, b, task.UUID, "linear_step_2")
	waits := frTransitionsTo(history, StepWaitingForRetry)
	require.Len(t, waits, 2)
	require.Contains(t, waits[0].Reason, "retry in 5ms (exponential backoff)")
	require.Contains(t, waits[1].Reason, "retry in 10ms (exponential backoff)")
	for _, w := range waits {
		require.Contains(t, w.Reason, "GATEWAY_UNAVAILABLE")
	}
	require.Equal(t, []string{
		"pending", "enqueued", "in_progress", "enqueued_as_error_for_orchestration", "waiting_for_retry",
		"enqueued", "in_progress", "enqueued_as_error_for_orchestration", "waiting_for_retry",
		"enqueued", "in_progress", "enqueued_for_orchestration", "complete",
	}, frToStates(history))
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	def.Steps[1].Retry.MaxAttempts = 3
	engine, b := setup(t, def)
	ctx := t.Context()
	b.worker.handle("linear_step_2", func(*dispatch.Claim, *dispatch.StepInput) dispatch.Outcome {
		return failure("GATEWAY_UNAVAILABLE", "the payment gateway is down", true)
	})
	task := createTask(t, engine, def, `{"even_number": 6}`)

	drive(t, engine, b, finished(t, engine, task.UUID))

	task, err := engine.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskBlockedByFailures, task.State)
	require.Nil(t, task.CompletedAt, "a blocked task is not finished: a person may still recover it")
	step := task.Step("linear_step_2")
	require.Equal(t, StepError, step.State)
	require.Equal(t, 3, step.Attempts)
	require.Equal(t, 3, frWorkerRuns(b, "linear_step_2"))
	require.NotNil(t, step.Error)
	require.Equal(t, "GATEWAY_UNAVAILABLE", step.Error.Code, "the handler's error is kept, not replaced")
	require.True(t, step.Error.Retryable)
	require.Equal(t, StepComplete, task.Step("linear_step_1").State)
	for _, name := range []string{"linear_step_3", "linear_step_4"} {
		require.Equal(t, StepPending, task.Step(name).State, name)
		require.Zero(t, frWorkerRuns(b, name), name)
	}

	history := frStepHistory(t, b, task.UUID, "linear_step_2")
	require.Len(t, frTransitionsTo(history, StepWaitingForRetry), 2)
	failed := frTransitionsTo(history, StepError)
	require.Len(t, failed, 1)
	require.Contains(t, failed[0].Reason, "retries exhausted after 3 of 3 attempts")
	require.EqualValues(t, 3, failed[0].Attempt)

	// Nothing is left to run: more rounds change nothing.
	frRequireQuiet(t, engine, b)
	require.Equal(t, 3, frWorkerRuns(b, "linear_step_2"))
}

func TestPermanentFailure(t *testing.T) {
	t.Parallel()
	def := diamondWorkflow()
	engine, b := setup(t, def)
	ctx := t.Context()
	b.worker.handle("diamond_branch_b", func(*dispatch.Claim, *dispatch.StepInput) dispatch.Outcome {
		return failure("INVALID_INPUT", "branch b cannot use this number", false)
	})
	task := createTask(t, engine, def, `{"even_number": 6}`)
	drive(t, engine, b, frStepIn(t, b, task.UUID, "diamond_branch_c", StepEnqueued))

	// Branch c is held by a second worker while branch b fails for good.
	other := frNewExecutor(t, b, "worker-2")
	claimC := frClaimByHand(t, b, other, def.NamespaceName, "diamond_branch_c")
	_, err := b.worker.runOnce(ctx)
	require.NoError(t, err)
	_, err = engine.ProcessResults(ctx)
	require.NoError(t, err)

	current, err := engine.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, StepError, current.Step("diamond_branch_b").State)
	require.Equal(t, 1, current.Step("diamond_branch_b").Attempts)
	require.Equal(t, TaskStepsInProcess, current.State, "not blocked while branch c is still running")

	input := claimC.Input
	require.NoError(t, other.Record(ctx, claimC, squareOfParents([]string{"diamond_start"})(claimC, input)))
	_, err = engine.ProcessResults(ctx)
	require.NoError(t, err)

	task, err = engine.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskBlockedByFailures, task.State)
	require.Equal(t, StepComplete, task.Step("diamond_branch_c").State, "the independent branch completes")
	require.Equal(t, "1296", stepValue(t, task, "diamond_branch_c"))
	require.Equal(t, StepPending, task.Step("diamond_end").State)
	failedB := task.Step("diamond_branch_b")
	require.Equal(t, StepError, failedB.State)
	require.Equal(t, 1, failedB.Attempts)
	require.Equal(t, "INVALID_INPUT", failedB.Error.Code)
	require.False(t, failedB.Error.Retryable)

	history := frStepHistory(t, b, task.UUID, "diamond_branch_b")
	require.Empty(t, frTransitionsTo(history, StepWaitingForRetry), "a permanent error is never retried")
	require.Contains(t, frTransitionsTo(history, StepError)[0].Reason, "permanent error INVALID_INPUT on attempt 1")

	// The task became blocked in the transaction that completed branch c,
	// not when branch b failed.
	taskHistory, err := b.queries.ListTaskTransitions(ctx, b.pool, task.UUID)
	require.NoError(t, err)
	last := taskHistory[len(taskHistory)-1]
	require.Equal(t, string(TaskBlockedByFailures), last.ToState)
	require.Equal(t, string(TaskStepsInProcess), *last.FromState)
	completedC := frTransitionsTo(frStepHistory(t, b, task.UUID, "diamond_branch_c"), StepComplete)
	require.Len(t, completedC, 1)
	require.True(t, last.CreatedAt.After(completedC[0].CreatedAt))
	require.Len(t, frTaskTransitionsTo(taskHistory, TaskBlockedByFailures), 1)

	frRequireQuiet(t, engine, b)
	require.Equal(t, 1, frWorkerRuns(b, "diamond_branch_b"))
	require.Zero(t, frWorkerRuns(b, "diamond_end"))
}

func TestStepPolicyNotRetryable(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	notRetryable := false
	def.Steps[1].Retry.Retryable = &notRetryable
	engine, b := setup(t, def)
	b.worker.handle("linear_step_2", func(*dispatch.Claim, *dispatch.StepInput) dispatch.Outcome {
		return failure("GATEWAY_UNAVAILABLE", "the payment gateway is down", true)
	})
	task := createTask(t, engine, def, `{"even_number": 6}`)

	drive(t, engine, b, finished(t, engine, task.UUID))

	task, err := engine.GetTask(t.Context(), task.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskBlockedByFailures, task.State)
	step := task.Step("linear_step_2")
	require.Equal(t, StepError, step.State)
	require.Equal(t, 1, step.Attempts)
	require.True(t, step.Error.Retryable, "the error itself was retryable; the step's policy forbids the retry")
	history := frStepHistory(t, b, task.UUID, "linear_step_2")
	require.Empty(t, frTransitionsTo(history, StepWaitingForRetry))
	require.Contains(t, frTransitionsTo(history, StepError)[0].Reason, "the step is not retryable")
	frRequireQuiet(t, engine, b)
	require.Equal(t, 1, frWorkerRuns(b, "linear_step_2"))
}

func TestHandlerRequestedRetryDelay(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)
	ctx := t.Context()
	b.worker.handle("linear_step_1", func(claim *dispatch.Claim, input *dispatch.StepInput) dispatch.Outcome {
		if claim.Step.Attempts == 1 {
			return dispatch.Outcome{Error: &dispatch.StepError{
				Code: "RATE_LIMITED", Message: "slow down", Retryable: true, RetryAfterMs: 1500,
			}}
		}
		return squareOfParents(nil)(claim, input)
	})
	task := createTask(t, engine, def, `{"even_number": 6}`)

	_, err := b.worker.runOnce(ctx)
	require.NoError(t, err)
	_, err = engine.ProcessResults(ctx)
	require.NoError(t, err)

	step := frStepRow(t, b, task.UUID, "linear_step_1")
	var state string
	var remainingMs float64
	require.NoError(t, b.pool.QueryRow(ctx,
		`SELECT state, extract(epoch FROM next_retry_at - now()) * 1000 FROM tasker.workflow_steps WHERE step_uuid = $1`,
		step.StepUUID).Scan(&state, &remainingMs))
	require.Equal(t, string(StepWaitingForRetry), state)
	// One-sided, so that a stalled test machine cannot fail it; the exact
	// delay is checked against updated_at (same statement) just below.
	require.LessOrEqual(t, remainingMs, 1500.0)
	require.Greater(t, remainingMs, 500.0, "next_retry_at follows the handler's delay, not the 5 ms backoff")
	step = frStepRow(t, b, task.UUID, "linear_step_1")
	require.Equal(t, 1500*time.Millisecond, step.NextRetryAt.Sub(step.UpdatedAt))
	waits := frTransitionsTo(frStepHistory(t, b, task.UUID, "linear_step_1"), StepWaitingForRetry)
	require.Len(t, waits, 1)
	require.Contains(t, waits[0].Reason, "retry in 1.5s (delay requested by the handler)")

	report, err := engine.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, report.RetriesEnqueued, "the retry is not due yet")

	drive(t, engine, b, finished(t, engine, task.UUID))
	task, err = engine.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskComplete, task.State)
	require.Equal(t, 2, task.Step("linear_step_1").Attempts)
	require.Equal(t, "2821109907456", stepValue(t, task, "linear_step_4"))
	failedAt := frTransitionTime(t, b, step.StepUUID, string(StepEnqueuedAsErrorForOrchestration), 1)
	retriedAt := frTransitionTime(t, b, step.StepUUID, string(StepEnqueued), 1)
	require.GreaterOrEqual(t, retriedAt.Sub(failedAt), 1500*time.Millisecond)
}

func TestManualRecovery(t *testing.T) {
	t.Parallel()

	t.Run("RetryStepGivesAFreshRetryBudget", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		b.worker.handle("linear_step_2", func(*dispatch.Claim, *dispatch.StepInput) dispatch.Outcome {
			return failure("GATEWAY_UNAVAILABLE", "the payment gateway is down", true)
		})
		task := createTask(t, engine, def, `{"even_number": 6}`)
		drive(t, engine, b, finished(t, engine, task.UUID))
		blocked, err := engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskBlockedByFailures, blocked.State)
		require.Equal(t, 3, blocked.Step("linear_step_2").Attempts)

		// The gateway is back, but flaky: two more failures, then success.
		// Only a budget reset to 3 attempts lets this through.
		b.worker.handle("linear_step_2", func(claim *dispatch.Claim, input *dispatch.StepInput) dispatch.Outcome {
			if claim.Step.Attempts < 3 {
				return failure("GATEWAY_UNAVAILABLE", "still flaky", true)
			}
			return squareOfParents([]string{"linear_step_1"})(claim, input)
		})
		retried, err := engine.RetryStep(ctx, task.UUID, "linear_step_2", "gateway fixed")
		require.NoError(t, err)
		require.Equal(t, TaskStepsInProcess, retried.State)
		step := retried.Step("linear_step_2")
		require.Equal(t, StepEnqueued, step.State)
		require.Zero(t, step.Attempts)
		require.Nil(t, step.Error)
		require.Nil(t, step.CompletedAt)

		drive(t, engine, b, finished(t, engine, task.UUID))
		task, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskComplete, task.State)
		require.Equal(t, 3, task.Step("linear_step_2").Attempts)
		require.Equal(t, 6, frWorkerRuns(b, "linear_step_2"))
		require.Equal(t, "2821109907456", stepValue(t, task, "linear_step_4"))
		manual := frTransitionsTo(frStepHistory(t, b, task.UUID, "linear_step_2"), StepEnqueued)
		require.Equal(t, "gateway fixed", manual[3].Reason, "the 4th enqueue is the manual retry, from error")
		require.Equal(t, string(StepError), *manual[3].FromState)
	})

	t.Run("ResolveStepFeedsItsResultToDependents", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		b.worker.handle("linear_step_1", func(*dispatch.Claim, *dispatch.StepInput) dispatch.Outcome {
			return failure("INVALID_INPUT", "cannot square this", false)
		})
		// even_number 8 would give 64; the resolved value 36 must win.
		task := createTask(t, engine, def, `{"even_number": 8}`)
		drive(t, engine, b, finished(t, engine, task.UUID))

		resolved, err := engine.ResolveStep(ctx, task.UUID, "linear_step_1", json.RawMessage(`{"value":"36"}`), "computed by hand")
		require.NoError(t, err)
		require.Equal(t, TaskStepsInProcess, resolved.State)
		require.Equal(t, StepResolvedManually, resolved.Step("linear_step_1").State)
		require.JSONEq(t, `{"value":"36"}`, string(resolved.Step("linear_step_1").Results))
		require.Equal(t, StepEnqueued, resolved.Step("linear_step_2").State)

		drive(t, engine, b, finished(t, engine, task.UUID))
		task, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskComplete, task.State)
		require.NotNil(t, task.CompletedAt)
		require.Equal(t, StepResolvedManually, task.Step("linear_step_1").State)
		require.Equal(t, "1296", stepValue(t, task, "linear_step_2"))
		require.Equal(t, "2821109907456", stepValue(t, task, "linear_step_4"))
		require.Equal(t, 1, frWorkerRuns(b, "linear_step_1"), "a resolved step does not run again")
		require.Empty(t, b.worker.orderViolations())
		resolvedRows := frTransitionsTo(frStepHistory(t, b, task.UUID, "linear_step_1"), StepResolvedManually)
		require.Len(t, resolvedRows, 1)
		require.Equal(t, "computed by hand", resolvedRows[0].Reason)
	})

	t.Run("RefusesWhatIsNotAFailedStepOfAnUnfinishedTask", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		b.worker.handle("linear_step_2", func(*dispatch.Claim, *dispatch.StepInput) dispatch.Outcome {
			return failure("INVALID_INPUT", "no", false)
		})
		blocked := createTask(t, engine, def, `{"even_number": 6}`)
		drive(t, engine, b, finished(t, engine, blocked.UUID))

		retry := func(taskUUID uuid.UUID, step string) error {
			_, err := engine.RetryStep(ctx, taskUUID, step, "")
			return err
		}
		resolve := func(taskUUID uuid.UUID, step string) error {
			_, err := engine.ResolveStep(ctx, taskUUID, step, json.RawMessage(`{"value":"1"}`), "")
			return err
		}
		for name, op := range map[string]func(uuid.UUID, string) error{"RetryStep": retry, "ResolveStep": resolve} {
			var conflict *StateConflictError
			require.ErrorAs(t, op(blocked.UUID, "linear_step_1"), &conflict, "%s on a complete step", name)
			require.Equal(t, string(StepComplete), conflict.State)
			require.ErrorAs(t, op(blocked.UUID, "linear_step_3"), &conflict, "%s on a pending step", name)
			require.Equal(t, string(StepPending), conflict.State)
			require.ErrorIs(t, op(blocked.UUID, "no_such_step"), ErrNotFound, name)
			require.ErrorIs(t, op(uuid.New(), "linear_step_2"), ErrNotFound, name)
		}
		_, err := engine.ResolveStep(ctx, blocked.UUID, "linear_step_2", json.RawMessage(`{not json`), "")
		var invalid *InvalidRequestError
		require.ErrorAs(t, err, &invalid)

		// A cancelled task, and a complete one.
		_, err = engine.CancelTask(ctx, blocked.UUID, "giving up")
		require.NoError(t, err)
		b.worker.handle("linear_step_2", squareOfParents([]string{"linear_step_1"}))
		done := createTask(t, engine, def, `{"even_number": 8}`)
		drive(t, engine, b, finished(t, engine, done.UUID))
		for _, tc := range []struct {
			task  uuid.UUID
			state TaskState
		}{{blocked.UUID, TaskCancelled}, {done.UUID, TaskComplete}} {
			for name, op := range map[string]func(uuid.UUID, string) error{"RetryStep": retry, "ResolveStep": resolve} {
				var conflict *StateConflictError
				require.ErrorAs(t, op(tc.task, "linear_step_2"), &conflict, "%s on a %s task", name, tc.state)
				require.Equal(t, string(tc.state), conflict.State)
			}
		}
		cancelled, err := engine.GetTask(ctx, blocked.UUID)
		require.NoError(t, err)
		require.Equal(t, StepError, cancelled.Step("linear_step_2").State, "a failed step stays failed when its task is cancelled")
	})
}

func TestCancelMidFlight(t *testing.T) {
	t.Parallel()
	def := diamondWorkflow()
	engine, b := setup(t, def)
	ctx := t.Context()
	task := createTask(t, engine, def, `{"even_number": 6}`)
	drive(t, engine, b, func() bool {
		current, err := engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		return current.Step("diamond_branch_b").State == StepEnqueued && current.Step("diamond_branch_c").State == StepEnqueued
	})
	other := frNewExecutor(t, b, "worker-2")
	running := frClaimByHand(t, b, other, def.NamespaceName, "diamond_branch_b")
	require.Equal(t, string(StepInProgress), frStepRow(t, b, task.UUID, "diamond_branch_b").State)

	listener, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = listener.Close(context.Background()) })
	_, err = listener.Exec(ctx, "LISTEN "+pgx.Identifier{dispatch.CancelChannel}.Sanitize())
	require.NoError(t, err)

	cancelled, err := engine.CancelTask(ctx, task.UUID, "customer withdrew")
	require.NoError(t, err)
	require.Equal(t, TaskCancelled, cancelled.State)
	require.NotNil(t, cancelled.CompletedAt)
	require.Equal(t, StepComplete, cancelled.Step("diamond_start").State, "a finished step keeps its state")
	for _, name := range []string{"diamond_branch_b", "diamond_branch_c", "diamond_end"} {
		require.Equal(t, StepCancelled, cancelled.Step(name).State, name)
		require.NotNil(t, cancelled.Step(name).CompletedAt, name)
	}

	// The subtests are consecutive stages of this one cancelled task, so
	// they run in order rather than in parallel.

	t.Run("NotifiesWorkers", func(t *testing.T) {
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := listener.WaitForNotification(waitCtx)
		require.NoError(t, err)
		require.Equal(t, dispatch.CancelChannel, n.Channel)
		require.Equal(t, task.UUID.String(), n.Payload)
	})

	t.Run("RunningStepLosesItsClaim", func(t *testing.T) {
		input := running.Input
		err = other.Record(ctx, running, squareOfParents([]string{"diamond_start"})(running, input))
		require.ErrorIs(t, err, dispatch.ErrClaimLost)
		var left int
		require.NoError(t, b.pool.QueryRow(ctx,
			`SELECT count(*) FROM pgmq.q_diamond_workflow_queue WHERE msg_id = $1`, running.MessageID).Scan(&left))
		require.Zero(t, left, "the lost claim's message is deleted")
	})

	t.Run("EnqueuedStepMessageIsDropped", func(t *testing.T) {
		queueName := dispatch.StepQueue(def.NamespaceName)
		msgs, err := b.queue.Read(ctx, b.pool, queueName, 30*time.Second, 10)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		_, err = b.worker.executor.Claim(ctx, queueName, msgs[0])
		require.ErrorIs(t, err, dispatch.ErrNotClaimable)
		m, err := b.queue.Metrics(ctx, b.pool, queueName)
		require.NoError(t, err)
		require.Zero(t, m.Length)
	})

	t.Run("CancellingAgainConflicts", func(t *testing.T) {
		_, err := engine.CancelTask(ctx, task.UUID, "")
		var conflict *StateConflictError
		require.ErrorAs(t, err, &conflict)
		require.Equal(t, string(TaskCancelled), conflict.State)
	})

	t.Run("NoResultIsWritten", func(t *testing.T) {
		// Sequential on purpose: runs after the lost Record above.
		current, err := engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		for _, name := range []string{"diamond_branch_b", "diamond_branch_c", "diamond_end"} {
			require.Empty(t, current.Step(name).Results, name)
			require.Empty(t, frTransitionsTo(frStepHistory(t, b, task.UUID, name), StepEnqueuedForOrchestration), name)
		}
		m, err := b.queue.Metrics(ctx, b.pool, dispatch.ResultsQueue)
		require.NoError(t, err)
		require.Zero(t, m.Length)
		frRequireQuiet(t, engine, b)
		current, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskCancelled, current.State)
	})
}

// --- helpers shared by failures_test.go and recovery_test.go ---

// frStepRow reads a step of a task by name straight from the database.
func frStepRow(t *testing.T, b *bundle, taskUUID uuid.UUID, name string) dbsqlc.TaskerWorkflowStep {
	t.Helper()
	row, err := b.queries.GetStepByName(t.Context(), b.pool, dbsqlc.GetStepByNameParams{TaskUUID: taskUUID, Name: name})
	require.NoError(t, err)
	return row
}

// frStepIn returns a done-func for drive: the named step reached state.
func frStepIn(t *testing.T, b *bundle, taskUUID uuid.UUID, name string, state StepState) func() bool {
	t.Helper()
	return func() bool { return frStepRow(t, b, taskUUID, name).State == string(state) }
}

// frStepHistory returns the recorded transitions of one step, oldest first.
func frStepHistory(t *testing.T, b *bundle, taskUUID uuid.UUID, name string) []dbsqlc.TaskerStepTransition {
	t.Helper()
	stepUUID := frStepRow(t, b, taskUUID, name).StepUUID
	rows, err := b.queries.ListStepTransitions(t.Context(), b.pool, taskUUID)
	require.NoError(t, err)
	var out []dbsqlc.TaskerStepTransition
	for _, r := range rows {
		if r.StepUUID == stepUUID {
			out = append(out, r)
		}
	}
	return out
}

func frTransitionsTo(rows []dbsqlc.TaskerStepTransition, to StepState) []dbsqlc.TaskerStepTransition {
	var out []dbsqlc.TaskerStepTransition
	for _, r := range rows {
		if r.ToState == string(to) {
			out = append(out, r)
		}
	}
	return out
}

func frTaskTransitionsTo(rows []dbsqlc.TaskerTaskTransition, to TaskState) []dbsqlc.TaskerTaskTransition {
	var out []dbsqlc.TaskerTaskTransition
	for _, r := range rows {
		if r.ToState == string(to) {
			out = append(out, r)
		}
	}
	return out
}

func frToStates(rows []dbsqlc.TaskerStepTransition) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ToState
	}
	return out
}

// frTransitionTime is when the step moved to state during attempt.
func frTransitionTime(t *testing.T, b *bundle, stepUUID uuid.UUID, state string, attempt int32) time.Time {
	t.Helper()
	var at time.Time
	require.NoError(t, b.pool.QueryRow(t.Context(),
		`SELECT created_at FROM tasker.step_transitions WHERE step_uuid = $1 AND to_state = $2 AND attempt = $3`,
		stepUUID, state, attempt).Scan(&at))
	return at
}

// frSweepUntilRetried runs the sweeper until it enqueues a due retry.
func frSweepUntilRetried(t *testing.T, engine *Engine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		report, err := engine.Sweep(t.Context())
		require.NoError(t, err)
		if report.RetriesEnqueued > 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "no retry became due")
	}
}

// frRequireQuiet runs a few more rounds and checks that none found work.
func frRequireQuiet(t *testing.T, engine *Engine, b *bundle) {
	t.Helper()
	ctx := t.Context()
	for range 3 {
		read, err := b.worker.runOnce(ctx)
		require.NoError(t, err)
		require.Zero(t, read, "no step message is left")
		results, err := engine.ProcessResults(ctx)
		require.NoError(t, err)
		require.Zero(t, results, "no result message is left")
		report, err := engine.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, SweepReport{}, report)
	}
}

func frWorkerRuns(b *bundle, step string) int {
	b.worker.mu.Lock()
	defer b.worker.mu.Unlock()
	return b.worker.runs[step]
}

func frNewExecutor(t *testing.T, b *bundle, id string) *dispatch.Executor {
	t.Helper()
	executor, err := dispatch.NewExecutor(b.pool, dispatch.ExecutorConfig{WorkerID: id, LeaseMargin: 5 * time.Second})
	require.NoError(t, err)
	return executor
}

// frClaimByHand reads the namespace queue, claims the named step's
// message through executor and makes every other message it read visible
// again.
func frClaimByHand(t *testing.T, b *bundle, executor *dispatch.Executor, namespace, step string) *dispatch.Claim {
	t.Helper()
	ctx := t.Context()
	queueName := dispatch.StepQueue(namespace)
	msgs, err := b.queue.Read(ctx, b.pool, queueName, 30*time.Second, 32)
	require.NoError(t, err)
	var claim *dispatch.Claim
	for _, msg := range msgs {
		stepMsg, err := dispatch.DecodeStepMessage(msg.Body)
		require.NoError(t, err)
		if stepMsg.StepName != step || claim != nil {
			_, err := b.queue.SetVisibility(ctx, b.pool, queueName, msg.ID, 0)
			require.NoError(t, err)
			continue
		}
		claim, err = executor.Claim(ctx, queueName, msg)
		require.NoError(t, err)
	}
	require.NotNil(t, claim, "no message for step %s on %s", step, queueName)
	return claim
}
