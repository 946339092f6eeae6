package orchestration

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/dbtx"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

// ProcessResults reads one batch from the results queue and settles it.
//
// The batch is read and its successful results settled in one transaction
// (consumeResults): the messages are locked rather than hidden, the
// successes are settled together by a few set-based statements
// (settleSuccesses; copies of a message it settled, in the same batch,
// count as settled), the settled messages are deleted and the others hidden
// for the visibility timeout, as a read hides them, and the transaction
// commits. A settled message is thus consumed with a single write, its
// deletion, and in the same commit as its effect: a crash at any point
// leaves either both or neither.
//
// Every message that path did not settle (failures, malformed messages,
// stale attempts, steps already settled or otherwise not waiting for the
// orchestrator) is then processed in its own transaction, up to
// ResultWorkers at once; the messages of one task are processed in order by
// one goroutine, so they never wait for each other's task lock. When the
// consuming transaction fails, the batch is read the ordinary way and every
// message goes through that path. It returns how many messages it read. A
// malformed message is archived with the reason; a message whose
// processing failed for another reason stays hidden until its visibility
// timeout ends and is then tried again. The error is non-nil only when
// reading failed or every message failed (e.g. the database is gone), so
// that the caller backs off.
func (e *Engine) ProcessResults(ctx context.Context) (int, error) {
	read, rest, err := e.consumeResults(ctx)
	if err != nil {
		e.log.ErrorContext(ctx, "settling a batch of results together failed; settling them one by one", "error", err)
		msgs, err := e.queue.Read(ctx, e.pool, dispatch.ResultsQueue, e.cfg.ResultVisibility, e.cfg.ResultBatchSize)
		if err != nil {
			return 0, fmt.Errorf("reading results: %w", err)
		}
		read, rest = len(msgs), decodeResults(msgs)
	}
	var (
		mu      sync.Mutex
		lastErr error
		failed  int
		done    = make([]int64, 0, len(rest))
		wg      sync.WaitGroup
		slots   = make(chan struct{}, e.cfg.ResultWorkers)
	)
	for _, group := range groupResultsByTask(rest) {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			for _, m := range group {
				err := e.processResult(ctx, m.msg, m.result, m.decodeErr)
				if err != nil {
					e.log.ErrorContext(ctx, "processing step result failed; it will be retried", "msg_id", m.msg.ID, "error", err)
				}
				mu.Lock()
				if err != nil {
					failed++
					lastErr = err
				} else {
					done = append(done, m.msg.ID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// The messages processed one by one go in one statement, after their
	// transactions committed. One that survives a crash in between comes
	// back after its visibility timeout and is settled again as a
	// duplicate, which changes nothing.
	if len(done) > 0 {
		if _, err := e.queue.Delete(ctx, e.pool, dispatch.ResultsQueue, done...); err != nil {
			e.log.WarnContext(ctx, "deleting processed result messages failed; they will come back and be ignored", "messages", len(done), "error", err)
		}
	}
	if failed > 0 && failed == read {
		return read, lastErr
	}
	return read, nil
}

// consumeResults reads a batch of result messages, settles its successes,
// deletes the messages it settled and hides the others, in one
// transaction (see ProcessResults). It returns how many messages it read
// and the decoded messages left for the per-message path, as hidden. On
// error nothing changed.
func (e *Engine) consumeResults(ctx context.Context) (read int, rest []decodedResult, err error) {
	err = dbtx.WithTx(ctx, e.pool, func(tx pgx.Tx) error {
		msgs, err := e.queue.ReadLocked(ctx, tx, dispatch.ResultsQueue, e.cfg.ResultBatchSize)
		if err != nil {
			return fmt.Errorf("reading results: %w", err)
		}
		read = len(msgs)
		results := decodeResults(msgs)
		settled, err := e.settleSuccesses(ctx, tx, results)
		if err != nil {
			return err
		}
		// The settled messages are deleted already (settleCompleteSQL).
		left := make([]int64, 0, len(results)-len(settled))
		rest = make([]decodedResult, 0, cap(left))
		for _, r := range results {
			if !settled[r.msg.ID] {
				left = append(left, r.msg.ID)
				rest = append(rest, r)
			}
		}
		hidden, err := e.queue.Hide(ctx, tx, dispatch.ResultsQueue, e.cfg.ResultVisibility, left...)
		if err != nil {
			return err
		}
		// The per-message path sees each message as a read would have
		// returned it. hidden is in id order, as msgs and so rest are.
		if len(hidden) != len(rest) {
			return fmt.Errorf("hid %d of the %d result messages left for one-by-one settling", len(hidden), len(rest))
		}
		for i := range rest {
			rest[i].msg = hidden[i]
		}
		return nil
	})
	return read, rest, err
}

// decodedResult is a result message with its decoding.
type decodedResult struct {
	msg       queue.Message
	result    dispatch.ResultMessage
	decodeErr error
}

// decodeResults decodes the messages, in order.
func decodeResults(msgs []queue.Message) []decodedResult {
	results := make([]decodedResult, len(msgs))
	for i, msg := range msgs {
		result, err := dispatch.DecodeResultMessage(msg.Body)
		results[i] = decodedResult{msg: msg, result: result, decodeErr: err}
	}
	return results
}

// groupResultsByTask groups decoded results by task, each group in message
// order, the groups in the order of their first message. Messages that did
// not decode form groups of one.
func groupResultsByTask(results []decodedResult) [][]decodedResult {
	var groups [][]decodedResult
	index := make(map[uuid.UUID]int, len(results))
	for _, d := range results {
		if d.decodeErr != nil {
			groups = append(groups, []decodedResult{d})
			continue
		}
		if i, ok := index[d.result.TaskUUID]; ok {
			groups[i] = append(groups[i], d)
			continue
		}
		index[d.result.TaskUUID] = len(groups)
		groups = append(groups, []decodedResult{d})
	}
	return groups
}

// processResult applies one decoded result message; a malformed one is
// archived.
func (e *Engine) processResult(ctx context.Context, msg queue.Message, result dispatch.ResultMessage, err error) error {
	if err == nil {
		err = dbtx.WithTx(ctx, e.pool, func(tx pgx.Tx) error {
			return e.applyResult(ctx, tx, result)
		})
	}
	if errors.Is(err, dispatch.ErrMalformed) {
		e.log.WarnContext(ctx, "archiving unusable result message", "msg_id", msg.ID, "reason", err.Error())
		return dispatch.ArchiveWithReason(ctx, e.pool, e.queue, dispatch.ResultsQueue, msg, err.Error(), e.cfg.ProcessID)
	}
	return err
}

// applyResult processes one result under the task's lock: it completes,
// retries or fails the step, enqueues the steps that became ready and
// re-evaluates the task. A stale or duplicate message (the step already
// moved on) changes nothing. ProcessResults deletes the message after.
func (e *Engine) applyResult(ctx context.Context, tx pgx.Tx, result dispatch.ResultMessage) error {
	task, step, err := e.lockTaskWithStep(ctx, tx, result)
	if err != nil {
		return err
	}
	if result.Attempt > int(step.MaxAttempts) {
		return fmt.Errorf("%w: attempt %d of step %s is impossible: the step allows %d", dispatch.ErrMalformed, result.Attempt, step.StepUUID, step.MaxAttempts)
	}
	if int(step.Attempts) == result.Attempt {
		if err := e.settleStep(ctx, tx, task, step); err != nil {
			return err
		}
	} else {
		e.log.DebugContext(ctx, "ignoring result of an earlier attempt", "step_uuid", step.StepUUID, "attempt", result.Attempt, "current_attempt", step.Attempts)
	}
	return nil
}

// lockTaskWithStep locks the result's task and loads its step, in one
// round trip when both exist; otherwise it finds out which is missing.
func (e *Engine) lockTaskWithStep(ctx context.Context, tx pgx.Tx, result dispatch.ResultMessage) (dbsqlc.TaskerTask, dbsqlc.TaskerWorkflowStep, error) {
	row, err := e.queries.LockTaskWithStep(ctx, tx, dbsqlc.LockTaskWithStepParams{TaskUUID: result.TaskUUID, StepUUID: result.StepUUID})
	if err == nil {
		return row.TaskerTask, row.TaskerWorkflowStep, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return dbsqlc.TaskerTask{}, dbsqlc.TaskerWorkflowStep{}, fmt.Errorf("locking task %s: %w", result.TaskUUID, err)
	}
	task, err := e.queries.LockTask(ctx, tx, result.TaskUUID)
	if errors.Is(err, pgx.ErrNoRows) {
		return task, dbsqlc.TaskerWorkflowStep{}, fmt.Errorf("%w: unknown task %s", dispatch.ErrMalformed, result.TaskUUID)
	}
	if err != nil {
		return task, dbsqlc.TaskerWorkflowStep{}, fmt.Errorf("locking task %s: %w", result.TaskUUID, err)
	}
	return task, dbsqlc.TaskerWorkflowStep{}, fmt.Errorf("%w: step %s is not a step of task %s", dispatch.ErrMalformed, result.StepUUID, result.TaskUUID)
}

// settleStep moves a step that a worker handed back to its next state.
// A step in any other state was already settled: nothing to do.
func (e *Engine) settleStep(ctx context.Context, tx pgx.Tx, task dbsqlc.TaskerTask, step dbsqlc.TaskerWorkflowStep) error {
	switch StepState(step.State) {
	case StepEnqueuedForOrchestration:
		return e.releaseChildren(ctx, tx, task, step, true, "step "+step.Name+" complete")
	case StepEnqueuedAsErrorForOrchestration:
		return e.settleFailure(ctx, tx, task, step)
	default:
		return nil
	}
}

// settleFailure schedules a retry or fails the step for good.
func (e *Engine) settleFailure(ctx context.Context, tx pgx.Tx, task dbsqlc.TaskerTask, step dbsqlc.TaskerWorkflowStep) error {
	decision := decideFailure(step, stepErrorOf(step), e.cfg.Rand)
	from := StepEnqueuedAsErrorForOrchestration
	if decision.retry {
		if err := e.transitionStep(ctx, tx, step.StepUUID, from, StepWaitingForRetry, decision.reason, decision.delay.Milliseconds()); err != nil {
			return err
		}
		e.sweepWake.after(decision.delay)
	} else if err := e.transitionStep(ctx, tx, step.StepUUID, from, StepError, decision.reason, 0); err != nil {
		return err
	}
	return e.evaluateTask(ctx, tx, task, "step "+step.Name+": "+decision.reason)
}

// afterStepSatisfied releases the children of a step that was resolved by
// hand, enqueues those that became ready, and re-evaluates the task.
func (e *Engine) afterStepSatisfied(ctx context.Context, tx pgx.Tx, task dbsqlc.TaskerTask, step dbsqlc.TaskerWorkflowStep, reason string) error {
	return e.releaseChildren(ctx, tx, task, step, false, reason)
}

// releaseChildren tells the step's children that it is done, enqueues those
// that became ready, and re-evaluates the task; with complete it first
// moves the step from enqueued_for_orchestration to complete, in the same
// statement (the path of every successful step).
func (e *Engine) releaseChildren(ctx context.Context, tx pgx.Tx, task dbsqlc.TaskerTask, step dbsqlc.TaskerWorkflowStep, complete bool, reason string) error {
	// Only a child whose last parent this was can have become ready (root
	// steps are enqueued at creation).
	released, err := e.queries.ReleaseChildren(ctx, tx, dbsqlc.ReleaseChildrenParams{
		Complete: complete, StepUUID: step.StepUUID, TaskUUID: step.TaskUUID, Actor: e.cfg.ProcessID,
		CompleteReason: "handler result stored", Reason: "parents complete after " + step.Name,
	})
	if err != nil {
		return fmt.Errorf("releasing children of %s: %w", step.Name, err)
	}
	if complete && released.Completed == 0 {
		return fmt.Errorf("moving step %s from %s to %s: step is no longer %s",
			step.StepUUID, StepEnqueuedForOrchestration, StepComplete, StepEnqueuedForOrchestration)
	}
	steps := make([]stepRef, len(released.ReadyUuids))
	for i, id := range released.ReadyUuids {
		steps[i] = stepRef{uuid: id, name: released.ReadyNames[i]}
	}
	if err := e.sendSteps(ctx, tx, refOf(task), steps); err != nil {
		return err
	}
	if len(steps) > 0 && TaskState(task.State) == TaskStepsInProcess {
		// Steps were just enqueued, so the task has work in flight and
		// stays steps_in_process (nextTaskState): no need to count.
		return nil
	}
	return e.evaluateTask(ctx, tx, task, reason)
}
