package orchestration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

// Exactly-once processing of step outcomes and recovery from lost workers
// and bad messages.

func TestDuplicateResultIsProcessedOnce(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)
	ctx := t.Context()
	b.worker.handle("linear_step_1", func(claim *dispatch.Claim, input *dispatch.StepInput) dispatch.Outcome {
		if claim.Step.Attempts == 1 {
			return failure("GATEWAY_UNAVAILABLE", "try again", true)
		}
		return squareOfParents(nil)(claim, input)
	})
	task := createTask(t, engine, def, `{"even_number": 6}`)

	// Attempt 1 fails; keep its result message to replay later.
	_, err := b.worker.runOnce(ctx)
	require.NoError(t, err)
	attempt1 := frResultBodies(t, b)
	require.Len(t, attempt1, 1)
	frRequireResultMessage(t, attempt1[0], 1, false)
	_, err = engine.ProcessResults(ctx)
	require.NoError(t, err)
	frSweepUntilRetried(t, engine)

	// Attempt 2 succeeds; its message is duplicated, and attempt 1's replayed.
	_, err = b.worker.runOnce(ctx)
	require.NoError(t, err)
	attempt2 := frResultBodies(t, b)
	require.Len(t, attempt2, 1)
	frRequireResultMessage(t, attempt2[0], 2, true)
	frSendRaw(t, b, dispatch.ResultsQueue, string(attempt2[0]))
	frSendRaw(t, b, dispatch.ResultsQueue, string(attempt1[0]))

	read, err := engine.ProcessResults(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, read)
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
	step1 := frStepHistory(t, b, task.UUID, "linear_step_1")
	require.Len(t, frTransitionsTo(step1, StepComplete), 1)
	require.Len(t, frTransitionsTo(step1, StepWaitingForRetry), 1, "the replayed failure schedules no second retry")
	require.Len(t, frTransitionsTo(frStepHistory(t, b, task.UUID, "linear_step_2"), StepEnqueued), 1)
	m, err := b.queue.Metrics(ctx, b.pool, dispatch.StepQueue(def.NamespaceName))
	require.NoError(t, err)
	require.EqualValues(t, 1, m.Length, "linear_step_2 was sent once")

	// Late replays after the task moved on change nothing either.
	drive(t, engine, b, finished(t, engine, task.UUID))
	frSendRaw(t, b, dispatch.ResultsQueue, string(attempt2[0]))
	frSendRaw(t, b, dispatch.ResultsQueue, string(attempt1[0]))
	read, err = engine.ProcessResults(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, read)
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)

	task, err = engine.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskComplete, task.State)
	require.Equal(t, 2, task.Step("linear_step_1").Attempts)
	for i, want := range []string{"36", "1296", "1679616", "2821109907456"} {
		name := fmt.Sprintf("linear_step_%d", i+1)
		require.Equal(t, want, stepValue(t, task, name))
		history := frStepHistory(t, b, task.UUID, name)
		require.Len(t, frTransitionsTo(history, StepComplete), 1, name)
		require.Len(t, frTransitionsTo(history, StepEnqueuedForOrchestration), 1, name)
	}
	taskHistory, err := b.queries.ListTaskTransitions(ctx, b.pool, task.UUID)
	require.NoError(t, err)
	require.Len(t, frTaskTransitionsTo(taskHistory, TaskComplete), 1)
	require.Empty(t, frDeadLetters(t, b, dispatch.ResultsQueue), "duplicates are not malformed")
}

func TestConcurrentOrchestratorsApplyDuplicatedResultsOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		batch int
	}{
		{"DefaultBatches", 0},
		{"OneMessagePerRead", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			def := treeWorkflow()
			first, b := setup(t, def)
			second := newTestEngine(t, b.pool, "orchestrator-2")
			engines := []*Engine{first, second}
			if tc.batch > 0 {
				for i := range engines {
					engines[i] = NewEngine(b.pool, Config{
						ProcessID: fmt.Sprintf("orchestrator-%d", i+1), ResultBatchSize: tc.batch,
						Rand: func() float64 { return 0.5 },
					})
				}
			}
			ctx := t.Context()
			task := createTask(t, first, def, `{"even_number": 6}`)

			deadline := time.Now().Add(30 * time.Second)
			for !finished(t, first, task.UUID)() {
				require.True(t, time.Now().Before(deadline), "task did not finish")
				_, err := b.worker.runOnce(ctx)
				require.NoError(t, err)
				// Every outcome arrives three times, to both orchestrators at once.
				for _, body := range frResultBodies(t, b) {
					frSendRaw(t, b, dispatch.ResultsQueue, string(body))
					frSendRaw(t, b, dispatch.ResultsQueue, string(body))
				}
				require.NoError(t, frProcessConcurrently(ctx, engines))
				_, err = first.Sweep(ctx)
				require.NoError(t, err)
			}

			task, err := first.GetTask(ctx, task.UUID)
			require.NoError(t, err)
			require.Equal(t, TaskComplete, task.State)
			require.Equal(t, "63340286662973277706162286946811886609896461828096", stepValue(t, task, "tree_final_convergence"))
			requireTransitions(t, b, task)
			require.Empty(t, b.worker.orderViolations())
			for _, s := range task.Steps {
				require.Equal(t, 1, frWorkerRuns(b, s.Name), s.Name)
			}
			frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
		})
	}
}

// frProcessConcurrently runs ProcessResults on every engine at the same time,
// each until it finds no message.
func frProcessConcurrently(ctx context.Context, engines []*Engine) error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, len(engines))
	for _, e := range engines {
		wg.Go(func() {
			<-start
			for {
				n, err := e.ProcessResults(ctx)
				if err != nil {
					errs <- err
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	return <-errs
}

func TestExpiredClaimLease(t *testing.T) {
	t.Parallel()

	t.Run("AnotherWorkerTakesOverWhenTheMessageReappears", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		queueName := dispatch.StepQueue(def.NamespaceName)
		task := createTask(t, engine, def, `{"even_number": 6}`)
		dead := frNewExecutor(t, b, "worker-dead")
		deadClaim := frClaimByHand(t, b, dead, def.NamespaceName, "linear_step_1")
		require.EqualValues(t, 1, deadClaim.Step.Attempts)

		// While the lease is live, the reappearing message is hidden again.
		_, err := b.queue.SetVisibility(ctx, b.pool, queueName, deadClaim.MessageID, 0)
		require.NoError(t, err)
		read, err := b.worker.runOnce(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, read)
		row := frStepRow(t, b, task.UUID, "linear_step_1")
		require.Equal(t, "worker-dead", *row.ClaimedBy)
		require.EqualValues(t, 1, row.Attempts)
		m, err := b.queue.Metrics(ctx, b.pool, queueName)
		require.NoError(t, err)
		require.EqualValues(t, 1, m.Length)
		require.Zero(t, m.Visible)

		// The worker died: its lease runs out, its message comes back.
		frExpireClaim(t, b, row.StepUUID, "1 second")
		_, err = b.queue.SetVisibility(ctx, b.pool, queueName, deadClaim.MessageID, 0)
		require.NoError(t, err)
		drive(t, engine, b, finished(t, engine, task.UUID))

		task, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskComplete, task.State)
		require.Equal(t, 2, task.Step("linear_step_1").Attempts)
		require.Equal(t, "2821109907456", stepValue(t, task, "linear_step_4"))
		claims := frTransitionsTo(frStepHistory(t, b, task.UUID, "linear_step_1"), StepInProgress)
		require.Len(t, claims, 2)
		require.Equal(t, "worker-dead", claims[0].Actor)
		require.Equal(t, "worker-1", claims[1].Actor)
		require.Equal(t, string(StepInProgress), *claims[1].FromState)
		require.Equal(t, "claimed again after the previous claim expired", claims[1].Reason)
		require.EqualValues(t, 2, claims[1].Attempt)

		// The dead worker wakes up and tries to record: refused, nothing written.
		before := frStepHistory(t, b, task.UUID, "linear_step_1")
		err = dead.Record(ctx, deadClaim, dispatch.Outcome{Result: json.RawMessage(`{"value":"999"}`)})
		require.ErrorIs(t, err, dispatch.ErrClaimLost)
		require.Equal(t, before, frStepHistory(t, b, task.UUID, "linear_step_1"))
		frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
		task, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, "36", stepValue(t, task, "linear_step_1"))
		for _, s := range task.Steps {
			written := frTransitionsTo(frStepHistory(t, b, task.UUID, s.Name), StepEnqueuedForOrchestration)
			require.Len(t, written, 1, "result of %s written once", s.Name)
			require.Equal(t, "worker-1", written[0].Actor)
		}
	})

	t.Run("DeadWorkersLateRecordLeavesTheNewClaimAlone", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		task := createTask(t, engine, def, `{"even_number": 6}`)
		dead := frNewExecutor(t, b, "worker-dead")
		deadClaim := frClaimByHand(t, b, dead, def.NamespaceName, "linear_step_1")
		frExpireClaim(t, b, deadClaim.Step.StepUUID, "1 second")
		_, err := b.queue.SetVisibility(ctx, b.pool, dispatch.StepQueue(def.NamespaceName), deadClaim.MessageID, 0)
		require.NoError(t, err)
		live := frNewExecutor(t, b, "worker-live")
		liveClaim := frClaimByHand(t, b, live, def.NamespaceName, "linear_step_1")
		require.EqualValues(t, 2, liveClaim.Step.Attempts)

		err = dead.Record(ctx, deadClaim, dispatch.Outcome{Result: json.RawMessage(`{"value":"999"}`)})
		require.ErrorIs(t, err, dispatch.ErrClaimLost)
		row := frStepRow(t, b, task.UUID, "linear_step_1")
		require.Equal(t, string(StepInProgress), row.State)
		require.Equal(t, "worker-live", *row.ClaimedBy)
		require.Empty(t, row.Results)

		input := liveClaim.Input
		require.NoError(t, live.Record(ctx, liveClaim, squareOfParents(nil)(liveClaim, input)))
		drive(t, engine, b, finished(t, engine, task.UUID))
		task, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskComplete, task.State)
		require.Equal(t, "36", stepValue(t, task, "linear_step_1"))
		written := frTransitionsTo(frStepHistory(t, b, task.UUID, "linear_step_1"), StepEnqueuedForOrchestration)
		require.Len(t, written, 1)
		require.Equal(t, "worker-live", written[0].Actor)
	})

	t.Run("SweeperRequeuesAfterTheGraceWhenTheMessageIsGone", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		queueName := dispatch.StepQueue(def.NamespaceName)
		task := createTask(t, engine, def, `{"even_number": 6}`)
		dead := frNewExecutor(t, b, "worker-dead")
		deadClaim := frClaimByHand(t, b, dead, def.NamespaceName, "linear_step_1")
		deleted, err := b.queue.Delete(ctx, b.pool, queueName, deadClaim.MessageID)
		require.NoError(t, err)
		require.Equal(t, 1, deleted)

		// Expired, but within the 30 s grace: left to a worker's take-over.
		frExpireClaim(t, b, deadClaim.Step.StepUUID, "10 seconds")
		report, err := engine.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, SweepReport{}, report)
		require.Equal(t, string(StepInProgress), frStepRow(t, b, task.UUID, "linear_step_1").State)

		frExpireClaim(t, b, deadClaim.Step.StepUUID, "45 seconds")
		report, err = engine.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, SweepReport{ClaimsRequeued: 1}, report)
		row := frStepRow(t, b, task.UUID, "linear_step_1")
		require.Equal(t, string(StepEnqueued), row.State)
		require.Nil(t, row.ClaimedBy)
		require.Nil(t, row.ClaimExpiresAt)
		require.EqualValues(t, 1, row.Attempts, "the lost attempt counts")
		requeued := frTransitionsTo(frStepHistory(t, b, task.UUID, "linear_step_1"), StepEnqueued)
		require.Len(t, requeued, 2)
		require.Equal(t, "claim lease expired; worker presumed dead", requeued[1].Reason)
		require.Equal(t, "orchestrator-1", requeued[1].Actor)
		m, err := b.queue.Metrics(ctx, b.pool, queueName)
		require.NoError(t, err)
		require.EqualValues(t, 1, m.Length)

		drive(t, engine, b, finished(t, engine, task.UUID))
		task, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskComplete, task.State)
		require.Equal(t, 2, task.Step("linear_step_1").Attempts)
		require.Equal(t, "2821109907456", stepValue(t, task, "linear_step_4"))
		require.ErrorIs(t, dead.Record(ctx, deadClaim, dispatch.Outcome{Result: json.RawMessage(`{}`)}), dispatch.ErrClaimLost)
		require.Len(t, frTransitionsTo(frStepHistory(t, b, task.UUID, "linear_step_1"), StepEnqueuedForOrchestration), 1)
	})

	t.Run("LastAttemptFailsWithLeaseExpired", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		def.Steps[0].Retry.MaxAttempts = 1
		engine, b := setup(t, def)
		ctx := t.Context()
		task := createTask(t, engine, def, `{"even_number": 6}`)
		dead := frNewExecutor(t, b, "worker-dead")
		deadClaim := frClaimByHand(t, b, dead, def.NamespaceName, "linear_step_1")
		_, err := b.queue.Delete(ctx, b.pool, dispatch.StepQueue(def.NamespaceName), deadClaim.MessageID)
		require.NoError(t, err)

		frExpireClaim(t, b, deadClaim.Step.StepUUID, "10 seconds")
		report, err := engine.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, SweepReport{}, report, "still within the grace")

		frExpireClaim(t, b, deadClaim.Step.StepUUID, "45 seconds")
		report, err = engine.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, SweepReport{ClaimsFailed: 1}, report)

		task, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskBlockedByFailures, task.State)
		step := task.Step("linear_step_1")
		require.Equal(t, StepError, step.State)
		require.Equal(t, 1, step.Attempts)
		require.Equal(t, "LEASE_EXPIRED", step.Error.Code)
		require.NotNil(t, step.CompletedAt)
		require.Equal(t, StepPending, task.Step("linear_step_2").State)
		failed := frTransitionsTo(frStepHistory(t, b, task.UUID, "linear_step_1"), StepError)
		require.Len(t, failed, 1)
		require.Equal(t, "claim lease expired on the last attempt", failed[0].Reason)
		require.ErrorIs(t, dead.Record(ctx, deadClaim, dispatch.Outcome{Result: json.RawMessage(`{}`)}), dispatch.ErrClaimLost)
		frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
		frRequireQuiet(t, engine, b)
	})

	// Exposes a bug: a worker that reads the reappeared message of a step
	// whose last attempt's lease expired more than a second ago gets a
	// plain error ("visibility timeout must not be negative") instead of
	// ErrNotClaimable, because dropUnclaimable hides the message until
	// claim_expires_at + 1s, which is already in the past.
	t.Run("WorkerSkipsTheMessageOfAnExpiredLastAttempt", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		def.Steps[0].Retry.MaxAttempts = 1
		engine, b := setup(t, def)
		ctx := t.Context()
		queueName := dispatch.StepQueue(def.NamespaceName)
		task := createTask(t, engine, def, `{"even_number": 6}`)
		dead := frNewExecutor(t, b, "worker-dead")
		deadClaim := frClaimByHand(t, b, dead, def.NamespaceName, "linear_step_1")
		frExpireClaim(t, b, deadClaim.Step.StepUUID, "5 seconds")
		_, err := b.queue.SetVisibility(ctx, b.pool, queueName, deadClaim.MessageID, 0)
		require.NoError(t, err)

		msgs, err := b.queue.Read(ctx, b.pool, queueName, 30*time.Second, 10)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		_, err = b.worker.executor.Claim(ctx, queueName, msgs[0])
		require.ErrorIs(t, err, dispatch.ErrNotClaimable, "no attempt is left to take over; the sweeper fails the step")
		row := frStepRow(t, b, task.UUID, "linear_step_1")
		require.Equal(t, "worker-dead", *row.ClaimedBy)
		require.EqualValues(t, 1, row.Attempts)

		frExpireClaim(t, b, deadClaim.Step.StepUUID, "45 seconds")
		report, err := engine.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, report.ClaimsFailed)
		drive(t, engine, b, finished(t, engine, task.UUID))
		task, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskBlockedByFailures, task.State)
	})
}

func TestMalformedMessagesAreArchived(t *testing.T) {
	t.Parallel()

	t.Run("ResultMessages", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		taskA := createTask(t, engine, def, `{"even_number": 6}`)
		taskB := createTask(t, engine, def, `{"even_number": 8}`)
		stepA := taskA.Step("linear_step_1").UUID
		stepB := taskB.Step("linear_step_1").UUID
		_, err := b.worker.runOnce(ctx)
		require.NoError(t, err)
		// B's step waits for the orchestrator with its real message removed:
		// only a wrongly accepted message could complete it now.
		var bMsgID int64
		require.NoError(t, b.pool.QueryRow(ctx,
			`SELECT msg_id FROM pgmq.q_orchestration_step_results WHERE message->>'task_uuid' = $1`,
			taskB.UUID.String()).Scan(&bMsgID))
		_, err = b.queue.Delete(ctx, b.pool, dispatch.ResultsQueue, bMsgID)
		require.NoError(t, err)

		unknownTask := uuid.New()
		bad := map[int64]string{}
		for body, reason := range map[string]string{
			`"hello"`: "not valid JSON of the expected shape",
			fmt.Sprintf(`{"task_uuid": %q}`, taskA.UUID):                                                              "needs task_uuid and step_uuid",
			fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "success": true}`, taskA.UUID, stepA):                     "needs attempt >= 1, got 0",
			fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "attempt": 1, "success": true}`, unknownTask, uuid.New()): "unknown task " + unknownTask.String(),
			fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "attempt": 1, "success": true}`, taskA.UUID, stepB):       fmt.Sprintf("step %s is not a step of task %s", stepB, taskA.UUID),
		} {
			bad[frSendRaw(t, b, dispatch.ResultsQueue, body)] = reason
		}

		read, err := engine.ProcessResults(ctx)
		require.NoError(t, err, "bad messages do not fail the round")
		require.Equal(t, 6, read)
		frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
		frRequireDeadLettered(t, b, dispatch.ResultsQueue, bad, "orchestrator-1")

		current, err := engine.GetTask(ctx, taskA.UUID)
		require.NoError(t, err)
		require.Equal(t, StepComplete, current.Step("linear_step_1").State, "the valid result was applied")
		require.Equal(t, StepEnqueued, current.Step("linear_step_2").State)
		require.Equal(t, string(StepEnqueuedForOrchestration), frStepRow(t, b, taskB.UUID, "linear_step_1").State,
			"the message naming B's step under task A was not applied")

		// A proper wake-up for B's step lets task B go on; both finish.
		frSendRaw(t, b, dispatch.ResultsQueue,
			fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "attempt": 1, "success": true}`, taskB.UUID, stepB))
		drive(t, engine, b, func() bool {
			return finished(t, engine, taskA.UUID)() && finished(t, engine, taskB.UUID)()
		})
		for _, id := range []uuid.UUID{taskA.UUID, taskB.UUID} {
			done, err := engine.GetTask(ctx, id)
			require.NoError(t, err)
			require.Equal(t, TaskComplete, done.State)
		}
		require.Len(t, frDeadLetters(t, b, dispatch.ResultsQueue), len(bad))
	})

	t.Run("StepMessages", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		queueName := dispatch.StepQueue(def.NamespaceName)
		task := createTask(t, engine, def, `{"even_number": 6}`)
		unknownStep := uuid.New()
		bad := map[int64]string{}
		for body, reason := range map[string]string{
			`"hello"`: "step message is not valid JSON of the expected shape",
			`[1, 2]`:  "step message is not valid JSON of the expected shape",
			fmt.Sprintf(`{"step_uuid": %q}`, uuid.New()):                                                            "step message needs task_uuid and step_uuid",
			fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "step_name": "linear_step_1"}`, task.UUID, unknownStep): "unknown step " + unknownStep.String(),
		} {
			bad[frSendRaw(t, b, queueName, body)] = reason
		}

		msgs, err := b.queue.Read(ctx, b.pool, queueName, 30*time.Second, 10)
		require.NoError(t, err)
		require.Len(t, msgs, len(bad)+1)
		for _, msg := range msgs {
			if _, isBad := bad[msg.ID]; !isBad {
				_, err := b.queue.SetVisibility(ctx, b.pool, queueName, msg.ID, 0)
				require.NoError(t, err)
				continue
			}
			_, err := b.worker.executor.Claim(ctx, queueName, msg)
			require.ErrorIs(t, err, dispatch.ErrMalformed, "message %d", msg.ID)
		}
		frRequireDeadLettered(t, b, queueName, bad, "worker-1")

		drive(t, engine, b, finished(t, engine, task.UUID))
		task, err = engine.GetTask(ctx, task.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskComplete, task.State)
		frRequireQueueEmpty(t, b, queueName)
	})

	// Exposes a bug: Executor.Claim claims the step first and compares
	// task UUIDs afterwards, so a message naming another task's step
	// claims that step (attempt spent, lease taken) and is neither
	// archived nor reported as ErrMalformed.
	t.Run("StepMessageNamingAnotherTasksStep", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		queueName := dispatch.StepQueue(def.NamespaceName)
		taskA := createTask(t, engine, def, `{"even_number": 6}`)
		taskB := createTask(t, engine, def, `{"even_number": 8}`)
		stepB := taskB.Step("linear_step_1").UUID
		badID := frSendRaw(t, b, queueName, fmt.Sprintf(
			`{"task_uuid": %q, "step_uuid": %q, "step_name": "linear_step_1", "namespace": %q}`,
			taskA.UUID, stepB, def.NamespaceName))

		msgs, err := b.queue.Read(ctx, b.pool, queueName, 30*time.Second, 10)
		require.NoError(t, err)
		var claimErr error
		for _, msg := range msgs {
			if msg.ID != badID {
				_, err := b.queue.SetVisibility(ctx, b.pool, queueName, msg.ID, 0)
				require.NoError(t, err)
				continue
			}
			_, claimErr = b.worker.executor.Claim(ctx, queueName, msg)
		}
		require.ErrorIs(t, claimErr, dispatch.ErrMalformed)
		row := frStepRow(t, b, taskB.UUID, "linear_step_1")
		require.Equal(t, string(StepEnqueued), row.State, "task B's step was not claimed through a message of task A")
		require.Zero(t, row.Attempts)
		frRequireDeadLettered(t, b, queueName, map[int64]string{badID: "belongs to task"}, "worker-1")

		drive(t, engine, b, func() bool {
			return finished(t, engine, taskA.UUID)() && finished(t, engine, taskB.UUID)()
		})
	})
}

func TestHostileResultBodies(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)
	ctx := t.Context()
	task := createTask(t, engine, def, `{"even_number": 6}`)
	step := task.Step("linear_step_1").UUID
	_, err := b.worker.runOnce(ctx)
	require.NoError(t, err)
	// The step's real result message is held back: any hostile message that
	// were wrongly accepted would complete the step.
	held := frResultBodies(t, b)
	require.Len(t, held, 1)
	_, err = b.pool.Exec(ctx, `DELETE FROM pgmq.q_orchestration_step_results`)
	require.NoError(t, err)

	ids := fmt.Sprintf(`"task_uuid": %q, "step_uuid": %q`, task.UUID, step)
	cases := []struct{ name, body string }{
		{"EmptyObject", `{}`},
		{"EmptyArray", `[]`},
		{"ArrayOfAValidMessage", fmt.Sprintf(`[{%s, "attempt": 1, "success": true}]`, ids)},
		{"Null", `null`},
		{"String", `"hello"`},
		{"Number", `42`},
		{"Boolean", `true`},
		{"NullFields", `{"task_uuid": null, "step_uuid": null, "attempt": null, "success": null}`},
		{"NilUUIDs", fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "attempt": 1}`, uuid.Nil, uuid.Nil)},
		{"UUIDNotAString", `{"task_uuid": 12, "step_uuid": {"a": 1}, "attempt": 1}`},
		{"InvalidUUID", `{"task_uuid": "not-a-uuid", "step_uuid": "nope", "attempt": 1}`},
		{"NegativeAttempt", fmt.Sprintf(`{%s, "attempt": -1, "success": true}`, ids)},
		{"ZeroAttempt", fmt.Sprintf(`{%s, "attempt": 0, "success": true}`, ids)},
		{"MinInt64Attempt", fmt.Sprintf(`{%s, "attempt": -9223372036854775808, "success": true}`, ids)},
		{"AttemptOverflowingInt64", fmt.Sprintf(`{%s, "attempt": 99999999999999999999999, "success": true}`, ids)},
		{"AttemptInExponentForm", fmt.Sprintf(`{%s, "attempt": 1e30, "success": true}`, ids)},
		{"FractionalAttempt", fmt.Sprintf(`{%s, "attempt": 1.5, "success": true}`, ids)},
		{"AttemptAsString", fmt.Sprintf(`{%s, "attempt": "1", "success": true}`, ids)},
		{"SuccessAsString", fmt.Sprintf(`{%s, "attempt": 1, "success": "yes"}`, ids)},
		{"HugeAttemptOfAnUnknownTask", fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "attempt": 9223372036854775807}`, uuid.New(), uuid.New())},
		{"DeeplyNestedField", fmt.Sprintf(`{"task_uuid": %s1%s, "step_uuid": %q, "attempt": 1, "success": true}`,
			strings.Repeat("[", 9000), strings.Repeat("]", 9000), step)},
		{"DeeplyNestedEverything", strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)},
	}
	names := map[int64]string{}
	for _, tc := range cases {
		id := frSendRawSQL(t, b, dispatch.ResultsQueue, tc.body)
		names[id] = tc.name
	}

	require.NotPanics(t, func() {
		for {
			n, err := engine.ProcessResults(ctx)
			require.NoError(t, err)
			if n == 0 {
				return
			}
		}
	})
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
	letters := frDeadLetters(t, b, dispatch.ResultsQueue)
	archived := frArchivedIDs(t, b, dispatch.ResultsQueue)
	for id, name := range names {
		require.Contains(t, letters, id, "%s was not dead-lettered", name)
		require.NotEmpty(t, letters[id].Reason, name)
		require.Contains(t, archived, id, "%s was not archived", name)
	}
	require.Equal(t, string(StepEnqueuedForOrchestration), frStepRow(t, b, task.UUID, "linear_step_1").State,
		"no hostile message was applied")

	frSendRaw(t, b, dispatch.ResultsQueue, string(held[0]))
	drive(t, engine, b, finished(t, engine, task.UUID))
	task, err = engine.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskComplete, task.State)
	require.Equal(t, "2821109907456", stepValue(t, task, "linear_step_4"))
}

// Exposes a bug: PostgreSQL stores JSON nested deeper than encoding/json's
// limit of 10000 levels, and the queue client scans message bodies into
// json.RawMessage, which pgx decodes with encoding/json. Such a message
// makes queue.Client.Read fail for the whole batch ("can't scan into
// dest[4] ... exceeded max depth"): it is never archived, the loop reports
// an error every round, and every message read with it is hidden for the
// visibility timeout without being processed.
func TestMessageNestedBeyondDecoderDepthIsArchived(t *testing.T) {
	t.Parallel()
	deep := `{"task_uuid": ` + strings.Repeat("[", 10500) + strings.Repeat("]", 10500) + `}`

	t.Run("ResultsQueue", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		ctx := t.Context()
		task := createTask(t, engine, def, `{"even_number": 6}`)
		poison := frSendRawSQL(t, b, dispatch.ResultsQueue, deep)
		_, err := b.worker.runOnce(ctx)
		require.NoError(t, err)

		read, err := engine.ProcessResults(ctx)
		require.NoError(t, err, "one bad message must not fail the batch")
		require.Equal(t, 2, read)
		require.Contains(t, frArchivedIDs(t, b, dispatch.ResultsQueue), poison)
		require.Contains(t, frDeadLetters(t, b, dispatch.ResultsQueue), poison)
		require.Equal(t, string(StepComplete), frStepRow(t, b, task.UUID, "linear_step_1").State, "the valid result read with it was applied")
	})

	t.Run("StepQueue", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		queueName := dispatch.StepQueue(def.NamespaceName)
		task := createTask(t, engine, def, `{"even_number": 6}`)
		poison := frSendRawSQL(t, b, queueName, deep)

		read, err := b.worker.runOnce(t.Context())
		require.NoError(t, err, "one bad message must not fail the worker's read")
		require.Equal(t, 2, read)
		require.Contains(t, frArchivedIDs(t, b, queueName), poison)
		require.Equal(t, string(StepEnqueuedForOrchestration), frStepRow(t, b, task.UUID, "linear_step_1").State)
	})
}

// Exposes a gap: a result message naming a real step with an attempt no
// worker can have made (above the step's max_attempts) is taken for a stale
// message and deleted with only a debug log, instead of being archived with
// the reason like every other unusable message.
func TestImpossibleAttemptIsArchived(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)
	ctx := t.Context()
	task := createTask(t, engine, def, `{"even_number": 6}`)
	step := task.Step("linear_step_1").UUID
	_, err := b.worker.runOnce(ctx)
	require.NoError(t, err)
	id := frSendRaw(t, b, dispatch.ResultsQueue,
		fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q, "attempt": 9223372036854775807, "success": true}`, task.UUID, step))

	require.NotPanics(t, func() {
		_, err = engine.ProcessResults(ctx)
	})
	require.NoError(t, err)
	frRequireQueueEmpty(t, b, dispatch.ResultsQueue)
	require.Equal(t, string(StepComplete), frStepRow(t, b, task.UUID, "linear_step_1").State, "the real result was applied")
	require.Contains(t, frArchivedIDs(t, b, dispatch.ResultsQueue), id)
	require.Contains(t, frDeadLetters(t, b, dispatch.ResultsQueue), id)
}

// --- helpers ---

// frResultBodies returns the bodies of the messages on the results
// queue, oldest first.
func frResultBodies(t *testing.T, b *bundle) []json.RawMessage {
	t.Helper()
	rows, err := b.pool.Query(t.Context(), `SELECT message FROM pgmq.q_orchestration_step_results ORDER BY msg_id`)
	require.NoError(t, err)
	var bodies []json.RawMessage
	for rows.Next() {
		var body json.RawMessage
		require.NoError(t, rows.Scan(&body))
		bodies = append(bodies, body)
	}
	require.NoError(t, rows.Err())
	return bodies
}

func frRequireResultMessage(t *testing.T, body json.RawMessage, attempt int, success bool) {
	t.Helper()
	msg, err := dispatch.DecodeResultMessage(body)
	require.NoError(t, err)
	require.Equal(t, attempt, msg.Attempt)
	require.Equal(t, success, msg.Success)
}

// frSendRaw puts body, as is, on queueName and returns its id.
func frSendRaw(t *testing.T, b *bundle, queueName, body string) int64 {
	t.Helper()
	id, err := b.queue.Send(t.Context(), b.pool, queueName, json.RawMessage(body), 0)
	require.NoError(t, err)
	return id
}

// frSendRawSQL sends body through PGMQ's SQL API, as a client in another
// language could, for bodies that encoding/json refuses to produce (e.g.
// nested deeper than its limit).
func frSendRawSQL(t *testing.T, b *bundle, queueName, body string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT pgmq.send($1, $2::jsonb)`, queueName, body).Scan(&id))
	return id
}

// frExpireClaim moves a step's claim lease into the past by ago (an SQL interval).
func frExpireClaim(t *testing.T, b *bundle, stepUUID uuid.UUID, ago string) {
	t.Helper()
	tag, err := b.pool.Exec(t.Context(),
		`UPDATE tasker.workflow_steps SET claim_expires_at = now() - $2::interval WHERE step_uuid = $1 AND state = 'in_progress'`,
		stepUUID, ago)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected(), "step %s holds no claim", stepUUID)
}

func frRequireQueueEmpty(t *testing.T, b *bundle, queueName string) {
	t.Helper()
	m, err := b.queue.Metrics(t.Context(), b.pool, queueName)
	require.NoError(t, err)
	require.Zero(t, m.Length, "queue %s is not empty", queueName)
}

// frDeadLetters returns the dead letters of a queue by message id.
func frDeadLetters(t *testing.T, b *bundle, queueName string) map[int64]dbsqlc.TaskerDeadLetter {
	t.Helper()
	rows, err := b.queries.ListDeadLetters(t.Context(), b.pool, queueName)
	require.NoError(t, err)
	out := make(map[int64]dbsqlc.TaskerDeadLetter, len(rows))
	for _, r := range rows {
		out[r.MsgID] = r
	}
	return out
}

// frArchivedIDs lists the ids in a queue's archive table.
func frArchivedIDs(t *testing.T, b *bundle, queueName string) []int64 {
	t.Helper()
	rows, err := b.pool.Query(t.Context(), `SELECT msg_id FROM pgmq.a_`+queueName+` ORDER BY msg_id`)
	require.NoError(t, err)
	var ids []int64
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	return ids
}

// frRequireDeadLettered checks that exactly the messages in want (id →
// substring of the reason) were archived from queueName by actor.
func frRequireDeadLettered(t *testing.T, b *bundle, queueName string, want map[int64]string, actor string) {
	t.Helper()
	letters := frDeadLetters(t, b, queueName)
	require.Len(t, letters, len(want))
	archived := frArchivedIDs(t, b, queueName)
	require.Len(t, archived, len(want))
	for id, reason := range want {
		letter, ok := letters[id]
		require.True(t, ok, "message %d has no dead letter", id)
		require.Contains(t, letter.Reason, reason, "message %d", id)
		require.Equal(t, actor, letter.Actor)
		require.Contains(t, archived, id)
	}
}
