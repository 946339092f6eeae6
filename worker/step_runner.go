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

// runStep carries one claimed step from its handler to its recorded
// outcome.
func (p *Processor) runStep(namespace string, msg queue.Message, claim *dispatch.Claim) {
	log := stepLog{base: p.log, claim: claim}
	step := hydrate(claim, claim.Input)
	p.cfg.Metrics.started(namespace, step.Definition.Callable, time.Since(msg.EnqueuedAt))
	start := time.Now()
	outcome, handedBack := p.execute(claim, step, log)
	if handedBack {
		p.cfg.Metrics.handedBack()
		p.release(claim, log)
		return
	}
	p.cfg.Metrics.finished(namespace, step.Definition.Callable, outcome, time.Since(start))
	p.record(claim, outcome, log)
}

// execute publishes the step on the bus and waits for its completion, while
// keeping the claim's lease alive. handedBack is true when the worker is
// shutting down and the step must go back to the queue.
func (p *Processor) execute(claim *dispatch.Claim, step *TaskSequenceStep, log stepLog) (outcome dispatch.Outcome, handedBack bool) {
	stepCtx, cancel := context.WithCancelCause(p.stepsCtx)
	defer cancel(nil)
	stepCtx, cancelTimeout := context.WithTimeoutCause(stepCtx, step.Definition.Timeout, errStepTimeout)
	defer cancelTimeout()
	p.running.add(claim.Step.TaskUUID, claim.Step.StepUUID, cancel)
	defer p.running.remove(claim.Step.TaskUUID, claim.Step.StepUUID)
	stopLease := p.keepLease(stepCtx, claim, cancel)
	defer stopLease()

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
// step ends (call the returned function then), and cancels the step when
// the claim is lost. It arms a timer rather than running a goroutine: most
// steps end long before their first extension.
func (p *Processor) keepLease(stepCtx context.Context, claim *dispatch.Claim, cancel context.CancelCauseFunc) (stop func()) {
	every := max((claim.Timeout()+p.cfg.LeaseMargin)/3, time.Second)
	var (
		mu      sync.Mutex
		stopped bool
		timer   *time.Timer
	)
	var extend func()
	extend = func() {
		if stepCtx.Err() != nil {
			return
		}
		if _, err := p.executor.ExtendLease(stepCtx, claim); errors.Is(err, dispatch.ErrClaimLost) {
			cancel(errClaimLost)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			timer = time.AfterFunc(every, extend)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	timer = time.AfterFunc(every, extend)
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		timer.Stop()
	}
}

// record stores the outcome; it runs to completion even during shutdown.
func (p *Processor) record(claim *dispatch.Claim, outcome dispatch.Outcome, log stepLog) {
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
func (p *Processor) release(claim *dispatch.Claim, log stepLog) {
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

// stepLog logs with a step's attributes (task, step, attempt, correlation
// id). It builds them only when a record is logged, as most steps log
// nothing at the default level.
type stepLog struct {
	base  *slog.Logger
	claim *dispatch.Claim
}

// log logs one record at level, with the step's attributes first.
func (l stepLog) log(ctx context.Context, level slog.Level, msg string, args ...any) {
	if !l.base.Enabled(ctx, level) {
		return
	}
	s := l.claim.Step
	l.base.With("task_uuid", s.TaskUUID, "step_uuid", s.StepUUID, "step", s.Name, "attempt", s.Attempts,
		"correlation_id", l.claim.Message.CorrelationID).Log(ctx, level, msg, args...)
}

// DebugContext logs at debug level.
func (l stepLog) DebugContext(ctx context.Context, msg string, args ...any) {
	l.log(ctx, slog.LevelDebug, msg, args...)
}

// InfoContext logs at info level.
func (l stepLog) InfoContext(ctx context.Context, msg string, args ...any) {
	l.log(ctx, slog.LevelInfo, msg, args...)
}

// WarnContext logs at warn level.
func (l stepLog) WarnContext(ctx context.Context, msg string, args ...any) {
	l.log(ctx, slog.LevelWarn, msg, args...)
}

// ErrorContext logs at error level.
func (l stepLog) ErrorContext(ctx context.Context, msg string, args ...any) {
	l.log(ctx, slog.LevelError, msg, args...)
}
