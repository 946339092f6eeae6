package dbsqlc

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestCountInFlightSteps counts the claimed steps of the given namespaces
// only, and reads them from the partial index on claim_expires_at rather
// than every step ever run: the WorkerPool autoscaler runs it every few
// seconds for every pool.
func TestCountInFlightSteps(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := t.Context()
	// Two namespaces with 5,000 finished tasks of four steps each, and some
	// steps claimed: 7 in a, 3 in b, plus one in a that is in_progress
	// without a claim, which cannot happen but must not count.
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO tasker.namespaces (name, queue_name) VALUES ('a', 'a_queue'), ('b', 'b_queue');
		INSERT INTO tasker.templates (namespace_name, name, version, identity_strategy, definition, fingerprint)
		VALUES ('a', 't', '1', 'always_unique', '{}', 'f'), ('b', 't', '1', 'always_unique', '{}', 'f');
		INSERT INTO tasker.tasks (task_uuid, template_id, namespace_name, name, version, state, context, identity_hash, correlation_id, step_count)
		SELECT gen_random_uuid(), 1 + g % 2, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, 't', '1', 'complete', '{}', g::text, gen_random_uuid(), 4
		FROM generate_series(1, 5000) g;
		INSERT INTO tasker.workflow_steps (step_uuid, task_uuid, name, position, handler_callable, retryable, max_attempts,
		    backoff, backoff_base_ms, max_backoff_ms, jitter_percent, timeout_seconds, unmet_dependencies, state)
		SELECT gen_random_uuid(), t.task_uuid, s::text, s, 'h', true, 3, 'constant', 0, 0, 0, 60, 0, 'complete'
		FROM tasker.tasks t, generate_series(1, 4) s;
		UPDATE tasker.workflow_steps SET state = 'in_progress', claim_expires_at = now() + interval '1 minute'
		WHERE step_uuid IN (SELECT ws.step_uuid FROM tasker.workflow_steps ws JOIN tasker.tasks t USING (task_uuid) WHERE t.namespace_name = 'a' LIMIT 7);
		UPDATE tasker.workflow_steps SET state = 'in_progress', claim_expires_at = now() + interval '1 minute'
		WHERE step_uuid IN (SELECT ws.step_uuid FROM tasker.workflow_steps ws JOIN tasker.tasks t USING (task_uuid) WHERE t.namespace_name = 'b' LIMIT 3);
		UPDATE tasker.workflow_steps SET state = 'in_progress'
		WHERE step_uuid IN (SELECT ws.step_uuid FROM tasker.workflow_steps ws JOIN tasker.tasks t USING (task_uuid) WHERE t.namespace_name = 'a' AND ws.state = 'complete' LIMIT 1);
		ANALYZE tasker.tasks, tasker.workflow_steps;`)
	require.NoError(t, err)

	q := New()
	for namespaces, want := range map[string]int64{"a": 7, "b": 3, "a b": 10, "c": 0} {
		got, err := q.CountInFlightSteps(ctx, db.Pool, strings.Fields(namespaces))
		require.NoError(t, err)
		require.Equal(t, want, got, namespaces)
	}

	var plan string
	rows, err := db.Pool.Query(ctx, "EXPLAIN "+countInFlightSteps, []string{"a"})
	require.NoError(t, err)
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan += line + "\n"
	}
	require.NoError(t, rows.Err())
	require.Contains(t, plan, "workflow_steps_claim_expiry_idx", plan)
	require.NotContains(t, plan, "Seq Scan on workflow_steps", plan)
}
