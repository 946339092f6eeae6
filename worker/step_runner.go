package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

// recordTimeout bounds recording an outcome; it runs even during shutdown.
const recordTimeout = 30 * time.Second

// runStep carries one message's step from claim to recorded outcome.
func (p *Processor) runStep(queueName, namespace string, msg queue.Message) {
	ctx := p.stepsCtx
	claim, err := p.executor.Claim(ctx, queueName, msg)
	switch {
	case errors.Is(err, dispatch.ErrNotClaimable):
		p.log.DebugContext(ctx, "skipping a step message", "queue", queueName, "msg_id", msg.ID, "reason", err.Error())
		return
	case err != nil:
		p.log.WarnContext(ctx, "could not claim a step", "queue", queueName, "msg_id", msg.ID, "error", err)
		return
	}
	log := p.log.With("task_uuid", claim.Step.TaskUUID, "step_uuid", claim.Step.StepUUID,
		"step", claim.Step.Name, "attempt", claim.Step.Attempts, "correlation_id", claim.Message.CorrelationID)
	step := hydrate(claim, claim.Input)
	p.cfg.Metrics.started(namespace, step.Definition.Callable, time.Since(msg.EnqueuedAt))
	start := time.Now()
	outcome, handedBack := p.execute(claim, step, log)
	if handedBack {
		p.release(claim, log)
		return
	}
	p.cfg.Metrics.finished(namespace, step.Definition.Callable, outcome, time.Since(start))
	p.record(claim, outcome, log)
}

// execute publishes the step on the bus and waits for its completion, while
// keeping the claim's lease alive. handedBack is true when the worker is
// shutting down and the step must go back to the queue.
func (p *Processor) execute(claim *dispatch.Claim, step *TaskSequenceStep, log *slog.Logger) (outcome dispatch.Outcome, handedBack bool) {
	stepCtx, cancel := context.WithCancelCause(p.stepsCtx)
	defer cancel(nil)
	stepCtx, cancelTimeout := context.WithTimeoutCause(stepCtx, step.Definition.Timeout, errStepTimeout)
	defer cancelTimeout()
	p.running.add(claim.Step.TaskUUID, claim.Step.StepUUID, cancel)
	defer p.running.remove(claim.Step.TaskUUID, claim.Step.StepUUID)
	go p.keepLease(stepCtx, claim, cancel)

	eventID := uuid.New()
	done := make(chan StepExecutionCompletionEvent, 1)
	p.waiters.Store(eventID, done)
	defer p.waiters.Delete(eventID)
	ev := StepExecutionEvent{EventID: eventID, TaskUUID: step.Task.UUID, StepUUID: step.Step.UUID, Step: step, Context: stepCtx}
	if err := p.bus.Executions.Publish(p.stepsCtx, ev); err != nil {
		log.WarnContext(stepCtx, "could not publish the step", "error", err)
		return dispatch.Outcome{}, true
	}
	abandoned, stopAbandon := p.abandonAfter(stepCtx)
	defer stopAbandon()
	select {
	case c := <-done:
		if errors.Is(context.Cause(stepCtx), errShutdown) {
			return dispatch.Outcome{}, true
		}
		return outcomeOf(c), false
	case <-abandoned:
		if errors.Is(context.Cause(stepCtx), errShutdown) {
			return dispatch.Outcome{}, true
		}
		log.WarnContext(stepCtx, "the handler ignored its cancelled context; recording a timeout without waiting for it")
		return dispatch.Outcome{Error: &dispatch.StepError{Code: "STEP_TIMEOUT", Message: context.Cause(stepCtx).Error(), Retryable: true}}, false
	}
}

// abandonAfter returns a channel closed AbandonAfter after stepCtx ends,
// and a function that stops it (call it when the step is over).
func (p *Processor) abandonAfter(stepCtx context.Context) (<-chan struct{}, func()) {
	fired := make(chan struct{})
	var (
		mu    sync.Mutex
		timer *time.Timer
	)
	stopArming := context.AfterFunc(stepCtx, func() {
		mu.Lock()
		defer mu.Unlock()
		timer = time.AfterFunc(p.cfg.AbandonAfter, func() { close(fired) })
	})
	return fired, func() {
		stopArming()
		mu.Lock()
		defer mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
	}
}

// keepLease extends the claim's lease at a third of its length until the
// step ends, and cancels the step when the claim is lost.
func (p *Processor) keepLease(stepCtx context.Context, claim *dispatch.Claim, cancel context.CancelCauseFunc) {
	every := max((claim.Timeout()+p.cfg.LeaseMargin)/3, time.Second)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-stepCtx.Done():
			return
		case <-ticker.C:
			if _, err := p.executor.ExtendLease(stepCtx, claim); errors.Is(err, dispatch.ErrClaimLost) {
				cancel(errClaimLost)
				return
			}
		}
	}
}

// record stores the outcome; it runs to completion even during shutdown.
func (p *Processor) record(claim *dispatch.Claim, outcome dispatch.Outcome, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.stepsCtx), recordTimeout)
	defer cancel()
	err := p.executor.Record(ctx, claim, outcome)
	switch {
	case errors.Is(err, dispatch.ErrClaimLost):
		log.InfoContext(ctx, "outcome discarded: the claim ended (task cancelled or step taken over)")
	case err != nil:
		log.ErrorContext(ctx, "could not record the outcome; the step will run again after its lease", "error", err)
	case outcome.Error != nil:
		log.InfoContext(ctx, "step failed", "code", outcome.Error.Code, "retryable", outcome.Error.Retryable, "message", outcome.Error.Message)
	default:
		log.DebugContext(ctx, "step complete")
	}
}

// release hands the step back to the queue without an outcome.
func (p *Processor) release(claim *dispatch.Claim, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.stepsCtx), recordTimeout)
	defer cancel()
	if err := p.executor.Release(ctx, claim); err != nil && !errors.Is(err, dispatch.ErrClaimLost) {
		log.ErrorContext(ctx, "could not hand the step back; it will run again after its lease", "error", err)
	}
}

// outcomeOf turns a completion event into the outcome to record.
func outcomeOf(c StepExecutionCompletionEvent) dispatch.Outcome {
	if c.Success {
		return dispatch.Outcome{Result: c.Result}
	}
	if c.Error == nil {
		return dispatch.Outcome{Error: &dispatch.StepError{Code: "HANDLER_ERROR", Message: "the step failed without an error", Retryable: true}}
	}
	return dispatch.Outcome{Error: c.Error}
}

// hydrate builds the handler's view of a claimed step.
func hydrate(claim *dispatch.Claim, input *dispatch.StepInput) *TaskSequenceStep {
	s := claim.Step
	return &TaskSequenceStep{
		Task: TaskInfo{
			UUID: input.Task.TaskUUID, Namespace: input.Task.NamespaceName, Name: input.Task.Name,
			Version: input.Task.Version, Context: input.Task.Context, CorrelationID: input.Task.CorrelationID,
		},
		Step: StepInfo{UUID: s.StepUUID, Name: s.Name, Attempt: int(s.Attempts), MaxAttempts: int(s.MaxAttempts)},
		Definition: StepDefinition{
			Callable: s.HandlerCallable, Initialization: s.HandlerInitialization, Retryable: s.Retryable,
			Backoff: s.Backoff, BackoffBaseMs: int(s.BackoffBaseMs), MaxBackoffMs: int(s.MaxBackoffMs),
			Timeout: claim.Timeout(),
		},
		Dependencies: input.Ancestors,
	}
}
