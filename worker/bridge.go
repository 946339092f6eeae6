package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/taskerops/tasker/orchestration/dispatch"
)

// HandlerBridge is the bus subscriber that runs Go handlers: for every
// StepExecutionEvent it looks the handler up in the registry by callable,
// runs it with the event's context, and publishes the completion. Other
// runtimes (WASM, subprocess) would be further subscribers of the same bus.
type HandlerBridge struct {
	bus      *Bus
	registry *Registry
	log      *slog.Logger
}

// NewHandlerBridge returns a bridge between bus and registry.
func NewHandlerBridge(bus *Bus, registry *Registry, logger *slog.Logger) *HandlerBridge {
	if logger == nil {
		logger = slog.Default()
	}
	return &HandlerBridge{bus: bus, registry: registry, log: logger}
}

// handlerIdle is how long a goroutine that ran a handler waits for the
// next event before it exits.
const handlerIdle = 10 * time.Second

// Run subscribes to execution events (with the given buffer) and runs each
// at once, concurrently with the others, until the bus closes; it then
// waits for running handlers. The number of concurrent handlers is bounded
// by the processor, which publishes at most its concurrency limit of
// events at once.
//
// An event goes to a goroutine that finished a handler and has waited for
// the next one less than handlerIdle; an event that finds none waiting
// starts a new goroutine.
// Handlers (JSON decoding, above all) need a deeper stack than a new
// goroutine starts with, and growing it, by copying, on every step was
// about a tenth of a busy worker's CPU.
func (b *HandlerBridge) Run(ctx context.Context, buffer int) {
	events, unsubscribe := b.bus.Executions.Subscribe(buffer)
	defer unsubscribe()
	var running sync.WaitGroup
	defer running.Wait()
	idle := make(chan StepExecutionEvent) // unbuffered: a send is a waiting goroutine's receive
	defer close(idle)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			select {
			case idle <- ev:
			default:
				running.Go(func() { b.serve(ctx, ev, idle) })
			}
		}
	}
}

// serve handles ev, then the events it receives from idle, until none
// arrives for handlerIdle or idle is closed.
func (b *HandlerBridge) serve(ctx context.Context, ev StepExecutionEvent, idle <-chan StepExecutionEvent) {
	b.handle(ctx, ev)
	timer := time.NewTimer(handlerIdle)
	defer timer.Stop()
	for {
		select {
		case next, ok := <-idle:
			if !ok {
				return
			}
			b.handle(ctx, next)
			timer.Reset(handlerIdle)
		case <-timer.C:
			return
		}
	}
}

// handle runs one event's handler and publishes its completion. The
// completion is published on ctx (the bridge's), not on the step's context,
// so that a step cancelled mid-way still reports back.
func (b *HandlerBridge) handle(ctx context.Context, ev StepExecutionEvent) {
	completion := b.execute(ev)
	if err := b.bus.Completions.Publish(ctx, completion); err != nil {
		b.log.ErrorContext(ctx, "could not publish a step completion", "step_uuid", ev.StepUUID, "error", err)
	}
}

// execute runs the handler, turning a missing handler, an error, a bad
// result or a panic into the completion's error.
func (b *HandlerBridge) execute(ev StepExecutionEvent) (done StepExecutionCompletionEvent) {
	done = StepExecutionCompletionEvent{EventID: ev.EventID, TaskUUID: ev.TaskUUID, StepUUID: ev.StepUUID}
	callable := ev.Step.Definition.Callable
	handler, ok := b.registry.Lookup(callable)
	if !ok {
		done.Error = &dispatch.StepError{
			Code:    "HANDLER_NOT_FOUND",
			Message: fmt.Sprintf("no handler is registered for callable %q in this worker", callable),
		}
		return done
	}
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("step handler panicked", "callable", callable, "step_uuid", ev.StepUUID, "panic", p, "stack", string(debug.Stack()))
			done.Success, done.Result = false, nil
			done.Error = &dispatch.StepError{Code: "HANDLER_PANIC", Message: fmt.Sprintf("handler %s panicked: %v", callable, p)}
		}
	}()
	result, err := handler.Call(ev.Context, ev.Step)
	if err != nil {
		done.Error = stepErrorOf(err)
		return done
	}
	raw, err := json.Marshal(result.Result)
	if err != nil {
		done.Error = &dispatch.StepError{Code: "INVALID_RESULT", Message: fmt.Sprintf("the result of %s cannot be encoded as JSON: %v", callable, err)}
		return done
	}
	done.Success, done.Result, done.Metadata = true, raw, result.Metadata
	return done
}
