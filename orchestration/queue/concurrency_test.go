package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbtx"
)

func TestClientConcurrentReaders(t *testing.T) {
	t.Parallel()

	t.Run("RacingReadersGetDisjointSetsCoveringAll", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		bodies := make([]json.RawMessage, 200)
		for i := range bodies {
			bodies[i] = json.RawMessage(fmt.Sprintf(`{"i": %d}`, i))
		}
		sent, err := client.SendBatch(ctx, bundle.pool, bundle.queue, bodies, 0)
		require.NoError(t, err)

		// Each reader drains the queue in small batches inside one
		// transaction, so the rows it has read stay locked until it commits
		// and the other reader must skip them rather than wait.
		start := make(chan struct{})
		got := make([][]int64, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for r := range got {
			wg.Go(func() {
				<-start
				errs[r] = dbtx.WithTx(ctx, bundle.pool, func(tx pgx.Tx) error {
					for {
						batch, err := client.Read(ctx, tx, bundle.queue, time.Minute, 7)
						if err != nil || len(batch) == 0 {
							return err
						}
						got[r] = append(got[r], messageIDs(batch)...)
					}
				})
			})
		}
		close(start)
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])

		for _, id := range got[0] {
			require.NotContains(t, got[1], id, "message %d was read by both readers", id)
		}
		all := slices.Concat(got[0], got[1])
		slices.Sort(all)
		require.Equal(t, sent, all, "together the readers read every message exactly once")
		t.Logf("reader 0 read %d messages, reader 1 read %d", len(got[0]), len(got[1]))
	})

	t.Run("ReaderSkipsMessagesAnotherTransactionHolds", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 5)

		tx, err := bundle.pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		// A zero visibility timeout leaves the held messages visible by vt,
		// so only the row locks keep the second reader off them.
		held, err := client.Read(ctx, tx, bundle.queue, 0, 3)
		require.NoError(t, err)
		require.Equal(t, ids[:3], messageIDs(held))

		noWait, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		other, err := client.Read(noWait, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err, "the second reader does not wait for the first one's locks")
		require.Equal(t, ids[3:], messageIDs(other))

		require.NoError(t, tx.Rollback(ctx))
		back, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Equal(t, ids[:3], messageIDs(back), "a rolled-back read gives the messages back")
	})
}
