package queue

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// pgmqSignatures are the functions of PGMQ's SQL API that migration 0001
// provides, as pg_get_function_arguments and pg_get_function_result print
// them. They follow pgmq 1.13's documentation (docs/api/sql/functions.md):
// any PGMQ client that calls them by position or by argument name works.
var pgmqSignatures = []string{
	"archive(queue_name text, msg_id bigint) boolean",
	"archive(queue_name text, msg_ids bigint[]) SETOF bigint",
	"create(queue_name text) void",
	"create_non_partitioned(queue_name text) void",
	"create_unlogged(queue_name text) void",
	"delete(queue_name text, msg_id bigint) boolean",
	"delete(queue_name text, msg_ids bigint[]) SETOF bigint",
	"drop_queue(queue_name text) boolean",
	"format_table_name(queue_name text, prefix text) text",
	"list_queues() SETOF pgmq.queue_record",
	"metrics(queue_name text) pgmq.metrics_result",
	"metrics_all() SETOF pgmq.metrics_result",
	"pop(queue_name text, qty integer DEFAULT 1) SETOF pgmq.message_record",
	"purge_queue(queue_name text) bigint",
	"read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}'::jsonb) SETOF pgmq.message_record",
	"read(queue_name text, vt timestamp with time zone, qty integer, conditional jsonb DEFAULT '{}'::jsonb) SETOF pgmq.message_record",
	"read_with_poll(queue_name text, vt integer, qty integer, max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100, conditional jsonb DEFAULT '{}'::jsonb) SETOF pgmq.message_record",
	"read_with_poll(queue_name text, vt timestamp with time zone, qty integer, max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100, conditional jsonb DEFAULT '{}'::jsonb) SETOF pgmq.message_record",
	"send(queue_name text, msg jsonb) SETOF bigint",
	"send(queue_name text, msg jsonb, delay integer) SETOF bigint",
	"send(queue_name text, msg jsonb, delay timestamp with time zone) SETOF bigint",
	"send(queue_name text, msg jsonb, headers jsonb) SETOF bigint",
	"send(queue_name text, msg jsonb, headers jsonb, delay integer) SETOF bigint",
	"send(queue_name text, msg jsonb, headers jsonb, delay timestamp with time zone) SETOF bigint",
	"send_batch(queue_name text, msgs jsonb[]) SETOF bigint",
	"send_batch(queue_name text, msgs jsonb[], delay integer) SETOF bigint",
	"send_batch(queue_name text, msgs jsonb[], delay timestamp with time zone) SETOF bigint",
	"send_batch(queue_name text, msgs jsonb[], headers jsonb[]) SETOF bigint",
	"send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer) SETOF bigint",
	"send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone) SETOF bigint",
	"set_vt(queue_name text, msg_id bigint, vt integer) SETOF pgmq.message_record",
	"set_vt(queue_name text, msg_id bigint, vt timestamp with time zone) SETOF pgmq.message_record",
	"set_vt(queue_name text, msg_ids bigint[], vt integer) SETOF pgmq.message_record",
	"set_vt(queue_name text, msg_ids bigint[], vt timestamp with time zone) SETOF pgmq.message_record",
	"validate_queue_name(queue_name text) void",
}

// columnNames returns the result column names of sql.
func columnNames(t *testing.T, b *testBundle, sql string, args ...any) []string {
	t.Helper()
	rows, err := b.pool.Query(t.Context(), sql, args...)
	require.NoError(t, err)
	var names []string
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
	}
	rows.Close()
	require.NoError(t, rows.Err())
	return names
}

func TestPGMQCompatibility(t *testing.T) {
	t.Parallel()

	t.Run("FunctionsHavePGMQSignatures", func(t *testing.T) {
		t.Parallel()
		_, bundle := setup(t)

		rows, err := bundle.pool.Query(t.Context(), `
			SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ') ' || pg_get_function_result(p.oid)
			FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
			WHERE n.nspname = 'pgmq' AND p.proname NOT LIKE '\_%'
			ORDER BY 1`)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, pgmqSignatures, got)
	})

	t.Run("RawReadReturnsTheDocumentedColumns", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		_, err := client.Send(t.Context(), bundle.pool, bundle.queue, 1, 0)
		require.NoError(t, err)

		want := []string{"msg_id", "read_ct", "enqueued_at", "last_read_at", "vt", "message", "headers"}
		require.Equal(t, want, columnNames(t, bundle, "SELECT * FROM pgmq.read('jobs', 30, 1)"))
		require.Equal(t, want, columnNames(t, bundle, "SELECT * FROM pgmq.pop('jobs')"))
		require.Equal(t,
			[]string{"queue_name", "queue_length", "newest_msg_age_sec", "oldest_msg_age_sec", "total_messages", "scrape_time", "queue_visible_length"},
			columnNames(t, bundle, "SELECT * FROM pgmq.metrics('jobs')"))
		require.Equal(t,
			[]string{"queue_name", "is_partitioned", "is_unlogged", "created_at"},
			columnNames(t, bundle, "SELECT * FROM pgmq.list_queues()"))
		require.Equal(t,
			[]string{"msg_id", "read_ct", "enqueued_at", "last_read_at", "vt", "message", "headers"},
			columnNames(t, bundle, "SELECT * FROM pgmq.q_jobs"))
		require.Equal(t,
			[]string{"msg_id", "read_ct", "enqueued_at", "last_read_at", "archived_at", "vt", "message", "headers"},
			columnNames(t, bundle, "SELECT * FROM pgmq.a_jobs"))
	})

	t.Run("NamedArgumentCallsWork", func(t *testing.T) {
		t.Parallel()
		_, bundle := setup(t)
		ctx := t.Context()

		var id int64
		require.NoError(t, bundle.pool.QueryRow(ctx,
			`SELECT * FROM pgmq.send(queue_name => 'jobs', msg => '{"a": 1}', headers => '{"trace": "x"}', delay => 0)`,
		).Scan(&id))
		var readCount int
		var headers string
		require.NoError(t, bundle.pool.QueryRow(ctx,
			`SELECT read_ct, headers::text FROM pgmq.read(queue_name => 'jobs', vt => 30, qty => 1)`,
		).Scan(&readCount, &headers))
		require.Equal(t, 1, readCount)
		require.JSONEq(t, `{"trace": "x"}`, headers)
		var deleted bool
		require.NoError(t, bundle.pool.QueryRow(ctx, `SELECT pgmq.delete(queue_name => 'jobs', msg_id => $1)`, id).Scan(&deleted))
		require.True(t, deleted)
	})

	t.Run("SQLRejectsInvalidNamesClearly", func(t *testing.T) {
		t.Parallel()
		_, bundle := setup(t)
		cases := map[string]string{
			"Bad-Name":              "must match ^[a-z_][a-z0-9_]*$",
			"9lives":                "must match ^[a-z_][a-z0-9_]*$",
			strings.Repeat("a", 48): "the maximum is 47",
			strings.Repeat("a", 60): "60 characters long",
		}
		for name, mentions := range cases {
			for _, sql := range []string{
				"SELECT pgmq.create($1)",
				"SELECT pgmq.send($1, '{}'::jsonb)",
				"SELECT count(*) FROM pgmq.read($1, 30, 1)",
			} {
				_, err := bundle.pool.Exec(t.Context(), sql, name)
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr, "%s with %q fails", sql, name)
				require.Equal(t, "42602", pgErr.Code, "invalid_name")
				require.Contains(t, pgErr.Message, mentions)
				require.ErrorIs(t, interpretError(err, "create", name), ErrInvalidName)
			}
		}
	})

	t.Run("ClientReadsMessagesOtherClientsSent", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		_, err := bundle.pool.Exec(ctx, `
			SELECT pgmq.send('jobs', '{"from": "python"}', '{"trace_id": "abc"}'::jsonb);
			SELECT pgmq.send_batch('jobs', ARRAY['1', '2']::jsonb[], ARRAY['{"h": 1}', '{"h": 2}']::jsonb[]);
			SELECT pgmq.send('jobs', NULL::jsonb)`)
		require.NoError(t, err)

		got, err := client.Read(ctx, bundle.pool, bundle.queue, time.Minute, 10)
		require.NoError(t, err)
		require.Len(t, got, 4)
		require.JSONEq(t, `{"from": "python"}`, string(got[0].Body))
		require.JSONEq(t, `1`, string(got[1].Body))
		require.JSONEq(t, `2`, string(got[2].Body))
		require.JSONEq(t, `null`, string(got[3].Body), "a NULL message reads as JSON null")
	})

	t.Run("ConditionalReadFiltersByContent", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		_, err := client.SendBatch(ctx, bundle.pool, bundle.queue,
			[]json.RawMessage{[]byte(`{"kind": "a"}`), []byte(`{"kind": "b"}`), []byte(`{"kind": "a", "x": 1}`)}, 0)
		require.NoError(t, err)

		var n int
		require.NoError(t, bundle.pool.QueryRow(ctx,
			`SELECT count(*) FROM pgmq.read('jobs', 30, 10, '{"kind": "a"}')`).Scan(&n))
		require.Equal(t, 2, n)
	})

	t.Run("PopDeletesWhatItReturns", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 3)

		rows, err := bundle.pool.Query(ctx, "SELECT msg_id FROM pgmq.pop('jobs', 2)")
		require.NoError(t, err)
		popped, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		require.Equal(t, ids[:2], popped)

		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.EqualValues(t, 1, m.Length)
	})

	t.Run("SetVtTakesSeveralIDsAndTimestamps", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 3)

		var n int
		require.NoError(t, bundle.pool.QueryRow(ctx,
			"SELECT count(*) FROM pgmq.set_vt('jobs', $1::bigint[], now() + interval '1 hour')", ids[:2]).Scan(&n))
		require.Equal(t, 2, n)
		m, err := client.Metrics(ctx, bundle.pool, bundle.queue)
		require.NoError(t, err)
		require.EqualValues(t, 1, m.Visible)
	})

	t.Run("ReadWithPollReturnsAtOnceWhenMessagesAreVisible", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		ids := sendN(ctx, t, client, bundle.pool, bundle.queue, 2)

		start := time.Now()
		rows, err := bundle.pool.Query(ctx, "SELECT msg_id FROM pgmq.read_with_poll('jobs', 30, 5, 10, 50)")
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		require.Equal(t, ids, got)
		require.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("ReadWithPollWaitsForAMessage", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()

		type result struct {
			ids []int64
			err error
		}
		done := make(chan result, 1)
		go func() {
			rows, err := bundle.pool.Query(ctx, "SELECT msg_id FROM pgmq.read_with_poll('jobs', 30, 5, 30, 20)")
			if err != nil {
				done <- result{err: err}
				return
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			done <- result{ids, err}
		}()
		require.Eventually(t, func() bool {
			var polling bool
			err := bundle.pool.QueryRow(ctx, `SELECT EXISTS (
				SELECT 1 FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()
				  AND state = 'active' AND query LIKE '%read_with_poll%')`).Scan(&polling)
			return err == nil && polling
		}, 10*time.Second, 10*time.Millisecond, "the poll is running")

		id, err := client.Send(ctx, bundle.pool, bundle.queue, "wake", 0)
		require.NoError(t, err)
		select {
		case r := <-done:
			require.NoError(t, r.err)
			require.Equal(t, []int64{id}, r.ids)
		case <-time.After(20 * time.Second):
			t.Fatal("read_with_poll did not return the message sent while it polled")
		}
	})

	t.Run("ReadWithPollGivesUpAfterMaxPollSeconds", func(t *testing.T) {
		t.Parallel()
		_, bundle := setup(t)

		var n int
		require.NoError(t, bundle.pool.QueryRow(t.Context(),
			"SELECT count(*) FROM pgmq.read_with_poll('jobs', 30, 5, 0, 10)").Scan(&n))
		require.Zero(t, n)
	})

	t.Run("ListQueuesMetricsAllAndDropQueue", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		require.NoError(t, client.Create(ctx, bundle.pool, "alpha"))
		_, err := bundle.pool.Exec(ctx, "SELECT pgmq.create_unlogged('fast')")
		require.NoError(t, err)

		rows, err := bundle.pool.Query(ctx, "SELECT queue_name || ':' || is_unlogged FROM pgmq.list_queues()")
		require.NoError(t, err)
		queues, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, []string{"alpha:false", "fast:true", "jobs:false"}, queues)

		var metricsRows int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM pgmq.metrics_all()").Scan(&metricsRows))
		require.Equal(t, 3, metricsRows)

		var dropped, droppedAgain bool
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT pgmq.drop_queue('alpha')").Scan(&dropped))
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT pgmq.drop_queue('alpha')").Scan(&droppedAgain))
		require.True(t, dropped)
		require.False(t, droppedAgain, "dropping a missing queue reports false")
		var tables int
		require.NoError(t, bundle.pool.QueryRow(ctx,
			"SELECT count(*) FROM pg_tables WHERE schemaname = 'pgmq' AND tablename IN ('q_alpha', 'a_alpha')").Scan(&tables))
		require.Zero(t, tables)
	})

	t.Run("DownMigrationRemovesEverythingAndUpWorksAgain", func(t *testing.T) {
		t.Parallel()
		client, bundle := setup(t)
		ctx := t.Context()
		_, err := client.Send(ctx, bundle.pool, bundle.queue, 1, 0)
		require.NoError(t, err)

		down, err := os.ReadFile("../migrate/migrations/0001_pgmq.down.sql")
		require.NoError(t, err)
		_, err = bundle.pool.Exec(ctx, string(down))
		require.NoError(t, err)
		var schemaLeft bool
		require.NoError(t, bundle.pool.QueryRow(ctx,
			"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pgmq')").Scan(&schemaLeft))
		require.False(t, schemaLeft)

		applyQueueMigration(t, bundle.pool)
		require.NoError(t, client.Create(ctx, bundle.pool, bundle.queue))
		_, err = client.Send(ctx, bundle.pool, bundle.queue, 1, 0)
		require.NoError(t, err)
	})
}
