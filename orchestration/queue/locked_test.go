package queue

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestClientReadLocked(t *testing.T) {
	t.Parallel()

	t.Run("LocksWithoutChangingAndSkipsWhatOthersHold", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 5)

		first, err := bundle.pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = first.Rollback(ctx) }()
		held, err := client.ReadLocked(ctx, first, bundle.queue, 3)
		require.NoError(t, err)
		require.Equal(t, ids[:3], messageIDs(held), "visible longest first, in id order")
		for _, m := range held {
			require.Zero(t, m.ReadCount, "the messages are returned as stored")
		}

		second, err := bundle.pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = second.Rollback(ctx) }()
		others, err := client.ReadLocked(ctx, second, bundle.queue, 10)
		require.NoError(t, err)
		require.Equal(t, ids[3:], messageIDs(others), "a second transaction skips the held messages without waiting")

		// Rolling back leaves everything as it was: the messages are visible
		// and were never read.
		require.NoError(t, first.Rollback(ctx))
		require.NoError(t, second.Rollback(ctx))
		again, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Equal(t, ids, messageIDs(again))
		for _, m := range again {
			require.Equal(t, 1, m.ReadCount, "ReadLocked did not count as a read")
		}
	})

	t.Run("ConsumeOneHideTheRest", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 3)

		var hidden []Message
		err := pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
			got, err := client.ReadLocked(ctx, tx, bundle.queue, 10)
			require.NoError(t, err)
			require.Equal(t, ids, messageIDs(got))
			n, err := client.Delete(ctx, tx, bundle.queue, got[1].ID)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			hidden, err = client.Hide(ctx, tx, bundle.queue, time.Minute, got[0].ID, got[2].ID)
			return err
		})
		require.NoError(t, err)
		require.Equal(t, []int64{ids[0], ids[2]}, messageIDs(hidden))
		for _, m := range hidden {
			require.Equal(t, 1, m.ReadCount, "Hide counts a read, as Read does")
			require.WithinDuration(t, time.Now().Add(time.Minute), m.VisibleAt, 5*time.Second)
		}

		visible, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Empty(t, visible, "the consumed message is gone and the others are hidden")
		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.EqualValues(t, 2, m.Length)
	})

	t.Run("HideOfNothingAndBadArguments", func(t *testing.T) {
		t.Parallel()
		client := New()
		got, err := client.Hide(t.Context(), nil, "fine", time.Second)
		require.NoError(t, err)
		require.Empty(t, got)
		_, err = client.Hide(t.Context(), nil, "Bad-Name", time.Second, 1)
		require.ErrorIs(t, err, ErrInvalidName)
		_, err = client.ReadLocked(t.Context(), nil, "Bad-Name", 1)
		require.ErrorIs(t, err, ErrInvalidName)
		_, err = client.ReadLocked(t.Context(), nil, "fine", 0)
		require.ErrorContains(t, err, "batch must be between 1")
		_, err = client.Hide(t.Context(), nil, "fine", -time.Second, 1)
		require.Error(t, err)
	})
}
