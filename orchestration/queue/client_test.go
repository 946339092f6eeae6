package queue

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbtx"
)

func TestClientCreate(t *testing.T) {
	t.Parallel()

	t.Run("IsIdempotent", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		id, err := client.Send(ctx, bundle.pool, bundle.queue, map[string]string{"keep": "me"}, 0)
		require.NoError(t, err)
		require.NoError(t, client.Create(ctx, bundle.pool, bundle.queue), "creating an existing queue is a no-op")

		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.EqualValues(t, 1, m.Length, "the second create kept the queue's messages")
		var queues int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM pgmq.meta WHERE queue_name = $1", bundle.queue).Scan(&queues))
		require.Equal(t, 1, queues)
		require.Positive(t, id)
	})

	t.Run("MakesQueueAndArchiveTables", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		require.NoError(t, client.Create(ctx, bundle.pool, "orchestration_step_results"))
		var q, a bool
		require.NoError(t, bundle.pool.QueryRow(ctx,
			"SELECT to_regclass('pgmq.q_orchestration_step_results') IS NOT NULL, to_regclass('pgmq.a_orchestration_step_results') IS NOT NULL",
		).Scan(&q, &a))
		require.True(t, q)
		require.True(t, a)
	})

	t.Run("RejectsInvalidNamesBeforeTouchingTheDatabase", func(t *testing.T) {
		t.Parallel()
		client := New()
		// A nil DBTX would panic if the client reached the database.
		for _, name := range []string{"Bad-Name", strings.Repeat("q", 60), ""} {
			err := client.Create(t.Context(), nil, name)
			require.ErrorIs(t, err, ErrInvalidName)
			_, err = client.Send(t.Context(), nil, name, 1, 0)
			require.ErrorIs(t, err, ErrInvalidName)
			_, err = client.Read(t.Context(), nil, name, time.Second, 1)
			require.ErrorIs(t, err, ErrInvalidName)
		}
	})
}

func TestClientSendRead(t *testing.T) {
	t.Parallel()

	t.Run("ReadMessageIsInvisibleUntilItsVisibilityTimeout", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		before := time.Now()
		id, err := client.Send(ctx, bundle.pool, bundle.queue, map[string]string{"hello": "world"}, 0)
		require.NoError(t, err)

		got, err := client.Read(ctx, bundle.pool, bundle.queue, 30*time.Second, 10)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, id, got[0].ID)
		require.Equal(t, 1, got[0].ReadCount)
		require.JSONEq(t, `{"hello": "world"}`, string(got[0].Body))
		require.WithinDuration(t, before, got[0].EnqueuedAt, 5*time.Second)
		require.WithinDuration(t, time.Now().Add(30*time.Second), got[0].VisibleAt, 5*time.Second)

		again, err := client.Read(ctx, bundle.pool, bundle.queue, 30*time.Second, 10)
		require.NoError(t, err)
		require.Empty(t, again, "a message in its visibility timeout is not read again")

		visible, err := client.SetVisibility(ctx, bundle.pool, bundle.queue, id, 0)
		require.NoError(t, err)
		require.Equal(t, id, visible.ID)
		require.False(t, visible.VisibleAt.After(time.Now().Add(time.Second)))

		third, err := client.Read(ctx, bundle.pool, bundle.queue, 30*time.Second, 10)
		require.NoError(t, err)
		require.Equal(t, []int64{id}, messageIDs(third), "the timeout passed, so the message is back")
		require.Equal(t, 2, third[0].ReadCount)
	})

	t.Run("ReadReturnsAtMostBatchOldestFirst", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 5)

		first, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 3)
		require.NoError(t, err)
		require.Equal(t, ids[:3], messageIDs(first))
		for i, m := range first {
			require.JSONEq(t, fmt.Sprintf(`{"n": %d}`, i), string(m.Body))
		}

		rest, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Equal(t, ids[3:], messageIDs(rest))
	})

	t.Run("EmptyQueueReadsNothing", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)

		got, err := client.Read(t.Context(), bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("DelayedMessageIsInvisibleUntilDue", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		id, err := client.Send(ctx, bundle.pool, bundle.queue, "later", time.Second)
		require.NoError(t, err)
		got, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Empty(t, got, "the message is not due yet")

		// Instead of sleeping, bring the due time forward.
		_, err = client.SetVisibility(ctx, bundle.pool, bundle.queue, id, 0)
		require.NoError(t, err)
		got, err = client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Equal(t, []int64{id}, messageIDs(got))
		require.JSONEq(t, `"later"`, string(got[0].Body))
	})

	t.Run("DelayRoundsUpToWholeSeconds", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		id, err := client.Send(ctx, bundle.pool, bundle.queue, 1, time.Millisecond)
		require.NoError(t, err)
		var delay time.Duration
		require.NoError(t, bundle.pool.QueryRow(ctx,
			"SELECT vt - enqueued_at FROM pgmq.q_jobs WHERE msg_id = $1", id).Scan(&delay))
		require.GreaterOrEqual(t, delay, time.Second, "1ms became one second, never zero")
		require.Less(t, delay, 2*time.Second)
	})

	t.Run("SendsRawJSONAsIs", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		_, err := client.Send(ctx, bundle.pool, bundle.queue, json.RawMessage(`{"step": "a", "attempt": 2}`), 0)
		require.NoError(t, err)
		_, err = client.Send(ctx, bundle.pool, bundle.queue, json.RawMessage(`{not json`), 0)
		require.ErrorContains(t, err, "encoding the message")

		got, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.JSONEq(t, `{"step": "a", "attempt": 2}`, string(got[0].Body))
	})

	t.Run("RejectsBadArguments", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		_, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 0)
		require.ErrorContains(t, err, "batch must be between 1")
		_, err = client.Read(ctx, bundle.pool, bundle.queue, -time.Second, 1)
		require.ErrorContains(t, err, "visibility timeout must not be negative")
		_, err = client.Send(ctx, bundle.pool, bundle.queue, 1, -time.Second)
		require.ErrorContains(t, err, "delay must not be negative")
	})

	t.Run("UnknownQueueIsQueueNotFound", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		_, err := client.Read(ctx, bundle.pool, "nope", time.Minute, 1)
		require.ErrorIs(t, err, ErrQueueNotFound)
		require.ErrorIs(t, err, dbtx.ErrNotFound)
		require.ErrorContains(t, err, `queue "nope": read`)
		_, err = client.Send(ctx, bundle.pool, "nope", 1, 0)
		require.ErrorIs(t, err, ErrQueueNotFound)
		_, err = client.Metrics(ctx, bundle.pool, "nope")
		require.ErrorIs(t, err, ErrQueueNotFound)
	})

	t.Run("SetVisibilityOfUnknownMessageIsMessageNotFound", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)

		_, err := client.SetVisibility(t.Context(), bundle.pool, bundle.queue, 12345, 0)
		require.ErrorIs(t, err, ErrMessageNotFound)
		require.ErrorIs(t, err, dbtx.ErrNotFound)
		require.ErrorContains(t, err, "message 12345")
	})
}

func TestClientSendBatch(t *testing.T) {
	t.Parallel()

	t.Run("ReturnsIDsInOrderOfBodies", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		bodies := []json.RawMessage{[]byte(`{"i": 0}`), []byte(`{"i": 1}`), []byte(`{"i": 2}`)}
		ids, err := client.SendBatch(ctx, bundle.pool, bundle.queue, bodies, 0)
		require.NoError(t, err)
		require.Len(t, ids, 3)
		require.Less(t, ids[0], ids[1])
		require.Less(t, ids[1], ids[2])

		got, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Equal(t, ids, messageIDs(got))
		for i, m := range got {
			require.JSONEq(t, string(bodies[i]), string(m.Body))
		}
	})

	t.Run("DelaysEveryMessage", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		_, err := client.SendBatch(ctx, bundle.pool, bundle.queue, []json.RawMessage{[]byte(`1`), []byte(`2`)}, time.Hour)
		require.NoError(t, err)
		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.EqualValues(t, 2, m.Length)
		require.Zero(t, m.Visible)
	})

	t.Run("EmptyBatchDoesNothing", func(t *testing.T) {
		t.Parallel()
		client := New()

		ids, err := client.SendBatch(t.Context(), nil, "jobs", nil, 0)
		require.NoError(t, err)
		require.Empty(t, ids)
	})

	t.Run("RejectsInvalidJSON", func(t *testing.T) {
		t.Parallel()
		client := New()

		_, err := client.SendBatch(t.Context(), nil, "jobs", []json.RawMessage{[]byte(`{}`), []byte(`{`)}, 0)
		require.ErrorContains(t, err, "message 1 is not valid JSON")
	})
}
