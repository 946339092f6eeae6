package worker

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestHandlerBridgeRunsEachEventAtOnce checks that the bridge's reuse of
// handler goroutines never makes an event wait for a busy one: while one
// handler blocks, later events still run, one after another on the
// goroutines that finished theirs; and that Run returns once its context
// ends, with no goroutine left behind waiting for events.
func TestHandlerBridgeRunsEachEventAtOnce(t *testing.T) {
	bus := NewBus()
	registry := NewRegistry()
	release := make(chan struct{})
	registry.MustRegister("test.block", HandlerFunc(func(ctx context.Context, _ *TaskSequenceStep) (StepResult, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return StepResult{Result: "released"}, nil
	}))
	registry.MustRegister("test.echo", HandlerFunc(func(_ context.Context, step *TaskSequenceStep) (StepResult, error) {
		return StepResult{Result: step.Step.Name}, nil
	}))
	completions, unsubscribe := bus.Completions.Subscribe(16)
	defer unsubscribe()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		NewHandlerBridge(bus, registry, nil).Run(ctx, 16)
	}()
	require.Eventually(t, func() bool { return bus.Executions.Subscribers() == 1 }, 10*time.Second, time.Millisecond)

	publish := func(callable, name string) uuid.UUID {
		t.Helper()
		ev := StepExecutionEvent{EventID: uuid.New(), Context: ctx, Step: &TaskSequenceStep{
			Step: StepInfo{Name: name}, Definition: StepDefinition{Callable: callable},
		}}
		if err := bus.Executions.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
		return ev.EventID
	}
	next := func() StepExecutionCompletionEvent {
		t.Helper()
		select {
		case c := <-completions:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no completion within 10 s")
			return StepExecutionCompletionEvent{}
		}
	}

	blocked := publish("test.block", "blocked")
	for i := range 5 {
		name := string(rune('a' + i))
		id := publish("test.echo", name)
		c := next()
		if c.EventID != id || !c.Success || string(c.Result) != `"`+name+`"` {
			t.Fatalf("completion %d = %+v, want the success of %s (%s) while another handler blocks", i, c, name, id)
		}
	}
	close(release)
	if c := next(); c.EventID != blocked || string(c.Result) != `"released"` {
		t.Fatalf("last completion = %+v, want the blocked handler's", c)
	}

	cancel()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended: a handler goroutine is still waiting for events")
	}
}
