// Package steptest builds worker.TaskSequenceStep values and runs handlers
// in the tests of the example workflows, without a database or a worker.
package steptest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker"
)

// Options describes the step to build. Zero values are fine everywhere.
type Options struct {
	// Name is the step's name.
	Name string
	// Callable is the step definition's callable.
	Callable string
	// Context is the task context; it is encoded to JSON unless it is a
	// json.RawMessage (nil means no context at all).
	Context any
	// Dependencies are the ancestors' results by step name, encoded to JSON
	// unless they are json.RawMessage values.
	Dependencies map[string]any
	// Initialization is the step definition's initialization (nil: none).
	Initialization any
	// Attempt is the 1-based attempt; zero means 1.
	Attempt int
}

// New builds a TaskSequenceStep with fresh task and step UUIDs.
func New(tb testing.TB, o Options) *worker.TaskSequenceStep {
	tb.Helper()
	attempt := o.Attempt
	if attempt == 0 {
		attempt = 1
	}
	deps := make(map[string]json.RawMessage, len(o.Dependencies))
	for name, v := range o.Dependencies {
		deps[name] = encode(tb, v)
	}
	return &worker.TaskSequenceStep{
		Task: worker.TaskInfo{UUID: uuid.New(), Context: encode(tb, o.Context), CorrelationID: uuid.New()},
		Step: worker.StepInfo{UUID: uuid.New(), Name: o.Name, Attempt: attempt, MaxAttempts: 3},
		Definition: worker.StepDefinition{
			Callable:       o.Callable,
			Initialization: encode(tb, o.Initialization),
			Retryable:      true,
		},
		Dependencies: deps,
	}
}

// encode returns v as JSON; nil stays nil.
func encode(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case json.RawMessage:
		return v
	}
	raw, err := json.Marshal(v)
	require.NoError(tb, err)
	return raw
}

// Link is one step of a workflow run by Chain, in topological order.
type Link struct {
	// Name is the step's name.
	Name string
	// Callable is the callable its handler is registered under.
	Callable string
}

// Chain runs links in order with the handlers of r, giving each step the
// results of every step before it, and returns the results by step name.
// It fails the test on the first handler error.
func Chain(tb testing.TB, r *worker.Registry, taskContext any, links []Link) map[string]json.RawMessage {
	tb.Helper()
	results := map[string]json.RawMessage{}
	for _, link := range links {
		deps := make(map[string]any, len(results))
		for name, raw := range results {
			deps[name] = raw
		}
		step := New(tb, Options{Name: link.Name, Callable: link.Callable, Context: taskContext, Dependencies: deps})
		results[link.Name] = Run(tb, r, step)
	}
	return results
}

// Run looks up the step's callable in r, runs it and returns its result as
// JSON. It fails the test if the handler fails.
func Run(t testing.TB, r *worker.Registry, step *worker.TaskSequenceStep) json.RawMessage {
	t.Helper()
	res, err := Call(t, r, context.Background(), step)
	require.NoError(t, err, "step %s", step.Step.Name)
	raw, err := json.Marshal(res.Result)
	require.NoError(t, err)
	return raw
}

// Call looks up the step's callable in r and runs it.
func Call(t testing.TB, r *worker.Registry, ctx context.Context, step *worker.TaskSequenceStep) (worker.StepResult, error) {
	t.Helper()
	h, ok := r.Lookup(step.Definition.Callable)
	require.True(t, ok, "no handler registered for %q", step.Definition.Callable)
	return h.Call(ctx, step)
}

// RequireStepError checks that err is a *worker.StepError with code and
// the given retryability.
func RequireStepError(tb testing.TB, err error, code string, retryable bool) {
	tb.Helper()
	require.Error(tb, err)
	var se *worker.StepError
	require.ErrorAs(tb, err, &se, "want a *worker.StepError, got %T: %v", err, err)
	require.Equal(tb, code, se.Code, "message: %s", se.Message)
	require.Equal(tb, retryable, se.Retryable, "retryable of %s", se.Code)
}
