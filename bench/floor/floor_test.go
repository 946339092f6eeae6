package main

import (
	"context"
	"testing"

	"github.com/taskerops/tasker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestWorkWritesTheContractsRows checks that the floor writes what its
// figures stand for: every step through its five transitions to complete,
// every task through its five to complete with its four edges, and nothing
// left on either queue.
func TestWorkWritesTheContractsRows(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		v    variant
	}{
		{"minimal", variant{}},
		{"locks and claim expiry", variant{locks: true, claimExpiry: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := pgtest.NewEmptyDatabase(t)
			if err := setup(ctx, db.Pool, c.v); err != nil {
				t.Fatal(err)
			}
			const tasks = 23 // not a multiple of the batch: the last batch is smaller
			done, err := work(ctx, db.Pool, c.v, tasks, 5, 3)
			if err != nil {
				t.Fatal(err)
			}
			if done != tasks {
				t.Errorf("work wrote %d tasks, want %d", done, tasks)
			}
			for _, q := range []struct {
				sql  string
				want int
			}{
				{"SELECT count(*) FROM floor.tasks WHERE state = 'complete' AND completed_at IS NOT NULL", tasks},
				{"SELECT count(*) FROM floor.tasks", tasks},
				{"SELECT count(*) FROM floor.task_transitions", 5 * tasks},
				{"SELECT count(*) FROM floor.edges", 4 * tasks},
				{"SELECT count(*) FROM floor.steps WHERE state = 'complete' AND attempts = 1 AND results IS NOT NULL AND claim_expires_at IS NULL", 4 * tasks},
				{"SELECT count(*) FROM floor.steps", 4 * tasks},
				{"SELECT count(*) FROM floor.step_transitions", 5 * 4 * tasks},
				// Each step's transitions chain from NULL to complete.
				{`SELECT count(*) FROM (
				    SELECT step_uuid, string_agg(coalesce(from_state, '') || '>' || to_state, ' ' ORDER BY id) AS path
				    FROM floor.step_transitions GROUP BY step_uuid) p
				  WHERE path = '>pending pending>enqueued enqueued>in_progress in_progress>enqueued_for_orchestration enqueued_for_orchestration>complete'`, 4 * tasks},
				{"SELECT count(*) FROM floor.q_steps", 0},
				{"SELECT count(*) FROM floor.q_results", 0},
			} {
				var got int
				if err := db.Pool.QueryRow(ctx, q.sql).Scan(&got); err != nil {
					t.Fatalf("%s: %v", q.sql, err)
				}
				if got != q.want {
					t.Errorf("%s = %d, want %d", q.sql, got, q.want)
				}
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-tasks", "100", "-locks"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.tasks != 100 || cfg.batch != 10 || cfg.clients != 4 || !cfg.v.locks || cfg.v.claimExpiry {
		t.Errorf("parseFlags = %+v", cfg)
	}
	if _, err := parseFlags([]string{"-batch", "0"}); err == nil {
		t.Error("parseFlags -batch 0: no error")
	}
}
