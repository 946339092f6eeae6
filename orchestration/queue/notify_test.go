package queue

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbtx"
	"github.com/taskerops/tasker/internal/pgtest"
)

// sentinelChannel is a channel the notification tests notify after the
// transaction under test. PostgreSQL delivers notifications in commit order,
// so whatever the listener receives before the sentinel is everything the
// transaction under test produced; no waiting for "nothing" is needed.
const sentinelChannel = "queue_test_sentinel"

// listen opens a connection of its own on db that listens on channels.
func listen(t *testing.T, db *pgtest.Database, channels ...string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	for _, ch := range channels {
		_, err := conn.Exec(t.Context(), "LISTEN "+pgx.Identifier{ch}.Sanitize())
		require.NoError(t, err)
	}
	return conn
}

// notifySentinel notifies sentinelChannel in a transaction of its own.
func notifySentinel(t *testing.T, db *pgtest.Database) {
	t.Helper()
	_, err := db.Pool.Exec(t.Context(), "SELECT pg_notify($1, 'end')", sentinelChannel)
	require.NoError(t, err)
}

// receiveUntilSentinel returns the notifications conn receives before the
// sentinel's.
func receiveUntilSentinel(t *testing.T, conn *pgx.Conn) []*pgconn.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var got []*pgconn.Notification
	for {
		n, err := conn.WaitForNotification(ctx)
		require.NoError(t, err, "waiting for notifications")
		if n.Channel == sentinelChannel {
			return got
		}
		got = append(got, n)
	}
}

func TestClientNotify(t *testing.T) {
	t.Parallel()

	t.Run("CommittedTransactionWithThreeSendsNotifiesOnce", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		listener := listen(t, bundle.db, Channel(bundle.queue), sentinelChannel)

		err := dbtx.WithTx(ctx, bundle.pool, func(tx pgx.Tx) error {
			for i := range 3 {
				if _, err := client.Send(ctx, tx, bundle.queue, i, 0); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(t, err)
		notifySentinel(t, bundle.db)

		got := receiveUntilSentinel(t, listener)
		require.Len(t, got, 1, "PostgreSQL folds the transaction's identical notifications into one")
		require.Equal(t, "tasker_jobs", got[0].Channel)
		require.Equal(t, bundle.queue, got[0].Payload)
	})

	t.Run("RolledBackTransactionNotifiesNothing", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		listener := listen(t, bundle.db, Channel(bundle.queue), sentinelChannel)

		tx, err := bundle.pool.Begin(ctx)
		require.NoError(t, err)
		_, err = client.Send(ctx, tx, bundle.queue, "never", 0)
		require.NoError(t, err)
		_, err = client.SendBatch(ctx, tx, bundle.queue, []json.RawMessage{[]byte(`1`)}, 0)
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))
		notifySentinel(t, bundle.db)

		require.Empty(t, receiveUntilSentinel(t, listener))
		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.Zero(t, m.Length, "the rolled-back messages are gone too")
	})

	t.Run("SendBatchNotifiesOnce", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		listener := listen(t, bundle.db, Channel(bundle.queue), sentinelChannel)

		_, err := client.SendBatch(ctx, bundle.pool, bundle.queue, []json.RawMessage{[]byte(`1`), []byte(`2`), []byte(`3`)}, 0)
		require.NoError(t, err)
		notifySentinel(t, bundle.db)

		got := receiveUntilSentinel(t, listener)
		require.Len(t, got, 1)
		require.Equal(t, bundle.queue, got[0].Payload)
	})

	t.Run("OtherQueuesDoNotNotifyThisOne", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		require.NoError(t, client.Create(ctx, bundle.pool, "other"))
		listener := listen(t, bundle.db, Channel(bundle.queue), sentinelChannel)

		_, err := client.Send(ctx, bundle.pool, "other", 1, 0)
		require.NoError(t, err)
		notifySentinel(t, bundle.db)

		require.Empty(t, receiveUntilSentinel(t, listener))
	})
}
