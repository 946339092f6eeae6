package queue

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration/migrate"
)

// TestMigrator runs every embedded migration, as `tasker migrate` does, and
// checks that the queue layer comes out usable, down to zero and up again.
func TestMigrator(t *testing.T) {
	t.Parallel()

	t.Run("UpDownUpLeavesWorkingQueues", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewEmptyDatabase(t)
		ctx := t.Context()
		migrator, err := migrate.New()
		require.NoError(t, err)
		client := New()

		for range 2 {
			_, err = migrator.Up(ctx, db.Pool)
			require.NoError(t, err)
			for _, q := range []string{"orchestration_step_results", "orchestration_task_requests"} {
				id, err := client.Send(ctx, db.Pool, q, map[string]string{"probe": q}, 0)
				require.NoError(t, err, "the migrations create queue %s", q)
				got, err := client.Read(ctx, db.Pool, q, time.Minute, 1)
				require.NoError(t, err)
				require.Equal(t, []int64{id}, messageIDs(got))
			}

			_, err = migrator.Down(ctx, db.Pool, 0)
			require.NoError(t, err)
			var schemaLeft bool
			require.NoError(t, db.Pool.QueryRow(ctx,
				"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pgmq')").Scan(&schemaLeft))
			require.False(t, schemaLeft, "down to zero removes schema pgmq")
		}
	})
}
