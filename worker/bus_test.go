package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestBus(t *testing.T) {
	t.Parallel()

	t.Run("EverySubscriberGetsEveryEventInOrder", func(t *testing.T) {
		t.Parallel()
		bus := NewBus()
		a, _ := bus.Completions.Subscribe(10)
		b, _ := bus.Completions.Subscribe(10)
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		for _, id := range ids {
			require.NoError(t, bus.Completions.Publish(t.Context(), StepExecutionCompletionEvent{EventID: id}))
		}
		for _, ch := range []<-chan StepExecutionCompletionEvent{a, b} {
			for _, id := range ids {
				require.Equal(t, id, (<-ch).EventID)
			}
		}
	})

	t.Run("AFullSubscriberBlocksThePublisherInsteadOfLosingEvents", func(t *testing.T) {
		t.Parallel()
		bus := NewBus()
		slow, _ := bus.Completions.Subscribe(1)
		const events = 50
		published := make(chan error, 1)
		go func() {
			for range events {
				if err := bus.Completions.Publish(t.Context(), StepExecutionCompletionEvent{EventID: uuid.New()}); err != nil {
					published <- err
					return
				}
			}
			published <- nil
		}()
		select {
		case <-published:
			t.Fatal("publishing 50 events into a buffer of 1 finished before anyone read")
		case <-time.After(50 * time.Millisecond):
		}
		for range events {
			<-slow
		}
		require.NoError(t, <-published)
	})

	t.Run("APublisherThatCannotWaitGetsAnError", func(t *testing.T) {
		t.Parallel()
		bus := NewBus()
		_, _ = bus.Completions.Subscribe(1)
		require.NoError(t, bus.Completions.Publish(t.Context(), StepExecutionCompletionEvent{}))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, bus.Completions.Publish(ctx, StepExecutionCompletionEvent{}), context.DeadlineExceeded)
	})

	t.Run("UnsubscribingReleasesABlockedPublisher", func(t *testing.T) {
		t.Parallel()
		bus := NewBus()
		ch, unsubscribe := bus.Completions.Subscribe(1)
		require.NoError(t, bus.Completions.Publish(t.Context(), StepExecutionCompletionEvent{}))
		done := make(chan error, 1)
		go func() { done <- bus.Completions.Publish(t.Context(), StepExecutionCompletionEvent{}) }()
		time.Sleep(10 * time.Millisecond)
		unsubscribe()
		require.NoError(t, <-done)
		_, open := <-ch // the buffered event
		require.True(t, open)
		_, open = <-ch
		require.False(t, open, "the channel is closed after unsubscribe")
		require.Zero(t, bus.Completions.Subscribers())
	})

	t.Run("CloseClosesEverySubscriptionAndRefusesPublishes", func(t *testing.T) {
		t.Parallel()
		bus := NewBus()
		ch, _ := bus.Executions.Subscribe(1)
		require.NoError(t, bus.Executions.Publish(t.Context(), StepExecutionEvent{}))
		blocked := make(chan error, 1)
		go func() { blocked <- bus.Executions.Publish(t.Context(), StepExecutionEvent{}) }()
		time.Sleep(10 * time.Millisecond)
		bus.Close()
		require.NoError(t, <-blocked, "a publisher blocked at close is released")
		<-ch
		_, open := <-ch
		require.False(t, open)
		require.ErrorIs(t, bus.Executions.Publish(t.Context(), StepExecutionEvent{}), ErrBusClosed)
		late, _ := bus.Executions.Subscribe(1)
		_, open = <-late
		require.False(t, open, "subscribing after close yields a closed channel")
		bus.Close() // idempotent
	})

	t.Run("ConcurrentPublishersAndSubscribers", func(t *testing.T) {
		t.Parallel()
		bus := NewBus()
		ch, unsubscribe := bus.Completions.Subscribe(4)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					require.NoError(t, bus.Completions.Publish(t.Context(), StepExecutionCompletionEvent{}))
				}
			})
		}
		for range 800 {
			<-ch
		}
		wg.Wait()
		unsubscribe()
	})
}
