package queue

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// queueMigrationPath is migration 0001, the bundled PGMQ implementation.
// Tests apply it alone so that they do not depend on later migrations.
const queueMigrationPath = "../migrate/migrations/0001_pgmq.up.sql"

// readQueueMigration reads migration 0001 once per test process.
var readQueueMigration = sync.OnceValues(func() ([]byte, error) {
	return os.ReadFile(queueMigrationPath)
})

// testBundle is what a test works with besides the client.
type testBundle struct {
	// db is the test's own database, with migration 0001 applied.
	db *pgtest.Database
	// pool is db.Pool.
	pool *pgxpool.Pool
	// queue is a queue that exists.
	queue string
}

// setup gives the test a database of its own holding the bundled PGMQ
// functions and a queue called "jobs".
func setup(t *testing.T) (*Client, *testBundle) {
	t.Helper()
	db := pgtest.NewEmptyDatabase(t)
	applyQueueMigration(t, db.Pool)
	client := New()
	require.NoError(t, client.Create(t.Context(), db.Pool, "jobs"))
	return client, &testBundle{db: db, pool: db.Pool, queue: "jobs"}
}

// applyQueueMigration runs migration 0001's up file on pool as it is
// (without the migrator, so the bundled SQL runs even where the server has
// the pgmq extension).
func applyQueueMigration(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	sql, err := readQueueMigration()
	require.NoError(t, err)
	_, err = pool.Exec(t.Context(), string(sql))
	require.NoError(t, err, "applying %s", queueMigrationPath)
}

// sendN sends n messages {"n": i} to queue and returns their ids.
func sendN(ctx context.Context, t *testing.T, client *Client, db DBTX, queue string, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range n {
		id, err := client.Send(ctx, db, queue, map[string]int{"n": i}, 0)
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

// messageIDs returns the ids of messages.
func messageIDs(messages []Message) []int64 {
	ids := make([]int64, len(messages))
	for i, m := range messages {
		ids[i] = m.ID
	}
	return ids
}
