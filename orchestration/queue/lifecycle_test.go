package queue

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClientDeleteArchive(t *testing.T) {
	t.Parallel()

	t.Run("DeleteCountsOnlyMessagesItFound", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 3)

		n, err := client.Delete(ctx, bundle.pool, bundle.queue, ids[0], ids[2], 999)
		require.NoError(t, err)
		require.Equal(t, 2, n)

		n, err = client.Delete(ctx, bundle.pool, bundle.queue, ids[0])
		require.NoError(t, err)
		require.Zero(t, n, "deleting twice finds nothing the second time")

		got, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Equal(t, []int64{ids[1]}, messageIDs(got))
	})

	t.Run("ArchiveMovesMessagesToTheArchiveTable", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 2)
		_, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 1)
		require.NoError(t, err)

		n, err := client.Archive(ctx, bundle.pool, bundle.queue, ids[0])
		require.NoError(t, err)
		require.Equal(t, 1, n)

		var readCount int
		var body string
		var archivedAt time.Time
		require.NoError(t, bundle.pool.QueryRow(ctx,
			"SELECT read_ct, message::text, archived_at FROM pgmq.a_jobs WHERE msg_id = $1", ids[0],
		).Scan(&readCount, &body, &archivedAt))
		require.Equal(t, 1, readCount, "the archive keeps the message as it was")
		require.JSONEq(t, `{"n": 0}`, body)
		require.WithinDuration(t, time.Now(), archivedAt, time.Minute)

		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.EqualValues(t, 1, m.Length, "the archived message left the queue")
	})

	t.Run("ArchiveOfUnknownIDMovesNothing", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)

		n, err := client.Archive(t.Context(), bundle.pool, bundle.queue, 424242)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("NoIDsIsANoOp", func(t *testing.T) {
		t.Parallel()
		client := New()

		n, err := client.Delete(t.Context(), nil, "jobs")
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = client.Archive(t.Context(), nil, "jobs")
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

func TestClientMetrics(t *testing.T) {
	t.Parallel()

	t.Run("CountsQueuedAndVisibleMessages", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		sendN(ctx, t, client, bundle.pool, bundle.queue, 3)
		_, err := client.Send(ctx, bundle.pool, bundle.queue, "later", time.Hour)
		require.NoError(t, err)
		_, err = client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 1)
		require.NoError(t, err)

		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.Equal(t, bundle.queue, m.Queue)
		require.EqualValues(t, 4, m.Length)
		require.EqualValues(t, 2, m.Visible, "one message is delayed and one is being read")
		require.EqualValues(t, 4, m.TotalMessages)
		require.GreaterOrEqual(t, m.OldestAge, m.NewestAge)
		require.Less(t, m.OldestAge, time.Minute)
		require.WithinDuration(t, time.Now(), m.ScrapedAt, time.Minute)
	})

	t.Run("EmptyQueueHasZeroAges", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)

		m, err := client.Metrics(t.Context(), bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.Equal(t, Metrics{Queue: bundle.queue, ScrapedAt: m.ScrapedAt}, m)
	})

	t.Run("TotalCountsDeletedMessagesToo", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 2)
		_, err := client.Delete(ctx, bundle.pool, bundle.queue, ids...)
		require.NoError(t, err)

		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.Zero(t, m.Length)
		require.EqualValues(t, 2, m.TotalMessages)
	})
}

func TestClientPurge(t *testing.T) {
	t.Parallel()

	t.Run("DeletesEveryMessageButKeepsTheArchive", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 4)
		_, err := client.Send(ctx, bundle.pool, bundle.queue, "delayed", time.Hour)
		require.NoError(t, err)
		_, err = client.Archive(ctx, bundle.pool, bundle.queue, ids[0])
		require.NoError(t, err)

		n, err := client.Purge(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.EqualValues(t, 4, n, "three visible messages and the delayed one")

		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.Zero(t, m.Length)
		var archived int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM pgmq.a_jobs").Scan(&archived))
		require.Equal(t, 1, archived)
	})

	t.Run("EmptyQueuePurgesNothing", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)

		n, err := client.Purge(t.Context(), bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.Zero(t, n)
	})
}
