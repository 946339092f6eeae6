// Package worker is tasker's Go worker runtime: it reads the queues of its
// workflow namespaces, claims each step, hydrates it with its task context
// and dependency results, publishes it on an in-process event bus, runs the
// registered handler, and records the outcome.
//
// Handlers implement StepHandler and are registered by callable in a
// Registry.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/orchestration/dispatch"
)

// StepHandler runs one step. It returns the step's result, or an error made
// with PermanentError or RetryableError (any other error counts as
// retryable, code HANDLER_ERROR). ctx ends at the step's timeout, when the
// task is cancelled, or when the worker shuts down.
type StepHandler interface {
	Call(ctx context.Context, step *TaskSequenceStep) (StepResult, error)
}

// HandlerFunc adapts a function to StepHandler.
type HandlerFunc func(ctx context.Context, step *TaskSequenceStep) (StepResult, error)

// Call implements StepHandler.
func (f HandlerFunc) Call(ctx context.Context, step *TaskSequenceStep) (StepResult, error) {
	return f(ctx, step)
}

// StepResult is a successful step's outcome.
type StepResult struct {
	// Result is stored as the step's JSON result and handed to dependent
	// steps. It must encode to JSON.
	Result any
	// Metadata travels on the completion event (logs, other subscribers);
	// it is not stored.
	Metadata map[string]any
}

// TaskInfo describes the task a step belongs to.
type TaskInfo struct {
	UUID          uuid.UUID
	Namespace     string
	Name          string
	Version       string
	Context       json.RawMessage
	CorrelationID uuid.UUID
}

// StepInfo identifies the step and the attempt being run.
type StepInfo struct {
	UUID uuid.UUID
	Name string
	// Attempt is 1 for the first attempt.
	Attempt     int
	MaxAttempts int
}

// StepDefinition is the step's definition as snapshotted into the task.
type StepDefinition struct {
	Callable       string
	Initialization json.RawMessage
	Retryable      bool
	Backoff        string
	BackoffBaseMs  int
	MaxBackoffMs   int
	Timeout        time.Duration
}

// TaskSequenceStep is everything a handler gets: the task, the step, its
// definition and the results of every ancestor step, by step name.
type TaskSequenceStep struct {
	Task         TaskInfo
	Step         StepInfo
	Definition   StepDefinition
	Dependencies map[string]json.RawMessage
}

// ErrMissingDependency is wrapped by the accessors when an ancestor's result
// is not there.
var ErrMissingDependency = errors.New("missing dependency result")

// DecodeContext decodes the task context into v (numbers stay exact when v
// uses json.Number or *big.Int fields).
func (s *TaskSequenceStep) DecodeContext(v any) error {
	if err := json.Unmarshal(s.Task.Context, v); err != nil {
		return fmt.Errorf("decoding the context of task %s: %w", s.Task.UUID, err)
	}
	return nil
}

// ContextField returns one top-level field of the context, and whether it
// is present (and not null).
func (s *TaskSequenceStep) ContextField(name string) (json.RawMessage, bool) {
	return field(s.Task.Context, name)
}

// DependencyResult decodes the result of the named ancestor step into v. It
// wraps ErrMissingDependency when that step has no result.
func (s *TaskSequenceStep) DependencyResult(step string, v any) error {
	raw, ok := s.Dependencies[step]
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("%w: no result from step %q", ErrMissingDependency, step)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decoding the result of step %q: %w", step, err)
	}
	return nil
}

// DependencyField returns one top-level field of an ancestor's result. It
// wraps ErrMissingDependency when the step or the field is missing.
func (s *TaskSequenceStep) DependencyField(step, name string) (json.RawMessage, error) {
	raw, ok := s.Dependencies[step]
	if !ok {
		return nil, fmt.Errorf("%w: no result from step %q", ErrMissingDependency, step)
	}
	value, ok := field(raw, name)
	if !ok {
		return nil, fmt.Errorf("%w: the result of step %q has no field %q", ErrMissingDependency, step, name)
	}
	return value, nil
}

// DecodeInitialization decodes the handler's initialization (from the
// template) into v; it leaves v alone when there is none.
func (s *TaskSequenceStep) DecodeInitialization(v any) error {
	if len(s.Definition.Initialization) == 0 {
		return nil
	}
	if err := json.Unmarshal(s.Definition.Initialization, v); err != nil {
		return fmt.Errorf("decoding the initialization of %s: %w", s.Definition.Callable, err)
	}
	return nil
}

func field(doc json.RawMessage, name string) (json.RawMessage, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(doc, &fields) != nil {
		return nil, false
	}
	value, ok := fields[name]
	if !ok || string(value) == "null" {
		return nil, false
	}
	return value, true
}

// StepError is the error type of PermanentError and RetryableError.
type StepError struct{ dispatch.StepError }

// Error implements error.
func (e *StepError) Error() string { return e.StepError.Error() }

// PermanentError fails the step for good: it is never retried. details, if
// not nil, is stored as the error's JSON context.
func PermanentError(code, message string, details any) error {
	e := &StepError{dispatch.StepError{Code: code, Message: message}}
	if details != nil {
		if raw, err := json.Marshal(details); err == nil {
			e.Context = raw
		}
	}
	return e
}

// RetryableError fails this attempt; the step's retry policy decides whether
// and when it runs again. retryAfter, when positive, replaces the policy's
// backoff for this retry.
func RetryableError(code, message string, retryAfter time.Duration) error {
	return &StepError{dispatch.StepError{Code: code, Message: message, Retryable: true, RetryAfterMs: retryAfter.Milliseconds()}}
}

// stepErrorOf turns a handler's error into the error to record.
func stepErrorOf(err error) *dispatch.StepError {
	if se, ok := errors.AsType[*StepError](err); ok {
		e := se.StepError
		return &e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &dispatch.StepError{Code: "STEP_TIMEOUT", Message: err.Error(), Retryable: true}
	case errors.Is(err, ErrMissingDependency):
		return &dispatch.StepError{Code: "MISSING_DEPENDENCY", Message: err.Error(), Retryable: true}
	default:
		return &dispatch.StepError{Code: "HANDLER_ERROR", Message: err.Error(), Retryable: true}
	}
}
