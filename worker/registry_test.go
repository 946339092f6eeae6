package worker

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func okHandler(context.Context, *TaskSequenceStep) (StepResult, error) {
	return StepResult{Result: map[string]string{"ok": "yes"}}, nil
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	require.NoError(t, r.Register("ns.A", HandlerFunc(okHandler)))
	require.NoError(t, r.Register("ns.B", HandlerFunc(okHandler)))
	require.ErrorContains(t, r.Register("ns.A", HandlerFunc(okHandler)), `registering "ns.A": a handler is already registered`)
	require.ErrorContains(t, r.Register("", HandlerFunc(okHandler)), "the callable is empty")
	require.ErrorContains(t, r.Register("ns.C", nil), "the handler is nil")
	_, ok := r.Lookup("ns.A")
	require.True(t, ok)
	_, ok = r.Lookup("ns.Missing")
	require.False(t, ok)
	require.Equal(t, []string{"ns.A", "ns.B"}, r.Callables())
	require.Panics(t, func() { r.MustRegister("ns.A", HandlerFunc(okHandler)) })
}

func TestHandlerBridge(t *testing.T) {
	t.Parallel()
	registry := NewRegistry()
	registry.MustRegister("ns.Ok", HandlerFunc(okHandler))
	registry.MustRegister("ns.Permanent", HandlerFunc(func(context.Context, *TaskSequenceStep) (StepResult, error) {
		return StepResult{}, PermanentError("BAD_INPUT", "no good", map[string]int{"field": 1})
	}))
	registry.MustRegister("ns.Retry", HandlerFunc(func(context.Context, *TaskSequenceStep) (StepResult, error) {
		return StepResult{}, RetryableError("BUSY", "later", 1500*time.Millisecond)
	}))
	registry.MustRegister("ns.Plain", HandlerFunc(func(context.Context, *TaskSequenceStep) (StepResult, error) {
		return StepResult{}, errors.New("boom")
	}))
	registry.MustRegister("ns.Panic", HandlerFunc(func(context.Context, *TaskSequenceStep) (StepResult, error) {
		panic("kaboom")
	}))
	registry.MustRegister("ns.BadResult", HandlerFunc(func(context.Context, *TaskSequenceStep) (StepResult, error) {
		return StepResult{Result: func() {}}, nil
	}))
	bus := NewBus()
	bridge := NewHandlerBridge(bus, registry, nil)
	completions, _ := bus.Completions.Subscribe(1)
	go bridge.Run(t.Context(), 1)
	require.Eventually(t, func() bool { return bus.Executions.Subscribers() == 1 }, time.Second, time.Millisecond)

	run := func(callable string) StepExecutionCompletionEvent {
		ev := StepExecutionEvent{EventID: uuid.New(), Context: t.Context(), Step: &TaskSequenceStep{Definition: StepDefinition{Callable: callable}}}
		require.NoError(t, bus.Executions.Publish(t.Context(), ev))
		done := <-completions
		require.Equal(t, ev.EventID, done.EventID, "the completion carries the execution's event id")
		return done
	}
	ok := run("ns.Ok")
	require.True(t, ok.Success)
	require.JSONEq(t, `{"ok":"yes"}`, string(ok.Result))

	cases := []struct {
		callable, code string
		retryable      bool
	}{
		{"ns.Permanent", "BAD_INPUT", false},
		{"ns.Retry", "BUSY", true},
		{"ns.Plain", "HANDLER_ERROR", true},
		{"ns.Panic", "HANDLER_PANIC", false},
		{"ns.BadResult", "INVALID_RESULT", false},
		{"ns.Missing", "HANDLER_NOT_FOUND", false},
	}
	for _, tc := range cases {
		done := run(tc.callable)
		require.False(t, done.Success, tc.callable)
		require.Equal(t, tc.code, done.Error.Code, tc.callable)
		require.Equal(t, tc.retryable, done.Error.Retryable, tc.callable)
	}
	require.Contains(t, run("ns.Missing").Error.Message, `no handler is registered for callable "ns.Missing"`)
	require.Equal(t, int64(1500), run("ns.Retry").Error.RetryAfterMs)
	require.JSONEq(t, `{"field":1}`, string(run("ns.Permanent").Error.Context))
}

func TestTaskSequenceStepAccessors(t *testing.T) {
	t.Parallel()
	step := &TaskSequenceStep{
		Task:       TaskInfo{Context: json.RawMessage(`{"even_number": 123456789012345678901234567890, "customer": {"id": 7}, "gone": null}`)},
		Definition: StepDefinition{Initialization: json.RawMessage(`{"delay_ms": 5}`)},
		Dependencies: map[string]json.RawMessage{
			"parent": json.RawMessage(`{"value": "36", "n": 2}`),
			"nulled": json.RawMessage(`null`),
		},
	}
	var ctxValue struct {
		EvenNumber json.Number `json:"even_number"`
	}
	require.NoError(t, step.DecodeContext(&ctxValue))
	require.Equal(t, "123456789012345678901234567890", ctxValue.EvenNumber.String(), "numbers stay exact")
	customer, ok := step.ContextField("customer")
	require.True(t, ok)
	require.JSONEq(t, `{"id": 7}`, string(customer))
	_, ok = step.ContextField("gone")
	require.False(t, ok, "a null field counts as absent")
	_, ok = step.ContextField("missing")
	require.False(t, ok)

	var parent struct {
		Value string `json:"value"`
	}
	require.NoError(t, step.DependencyResult("parent", &parent))
	require.Equal(t, "36", parent.Value)
	require.ErrorIs(t, step.DependencyResult("nope", &parent), ErrMissingDependency)
	require.ErrorIs(t, step.DependencyResult("nulled", &parent), ErrMissingDependency)
	value, err := step.DependencyField("parent", "value")
	require.NoError(t, err)
	require.JSONEq(t, `"36"`, string(value))
	_, err = step.DependencyField("parent", "missing")
	require.ErrorIs(t, err, ErrMissingDependency)

	var init struct {
		DelayMs int `json:"delay_ms"`
	}
	require.NoError(t, step.DecodeInitialization(&init))
	require.Equal(t, 5, init.DelayMs)
	require.NoError(t, (&TaskSequenceStep{}).DecodeInitialization(&init), "no initialization leaves v alone")

	require.Equal(t, "MISSING_DEPENDENCY", stepErrorOf(step.DependencyResult("nope", &parent)).Code)
	require.Equal(t, "STEP_TIMEOUT", stepErrorOf(context.DeadlineExceeded).Code)
}
