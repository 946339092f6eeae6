package e2e

import (
	"math/big"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// testWorkerStoppedMidStep stops, with SIGTERM, the worker running a slow
// step (3 s) when running steps get 1 s to finish: the worker must hand
// the step back without counting the attempt and exit 0 within the grace
// period; a new worker then runs the step and the task completes.
func testWorkerStoppedMidStep(t *testing.T, w *workerSystem) {
	t.Helper()
	running := runningWorkers(w.sys)
	require.Len(t, running, 1, "the survivor of the SIGKILL test")
	n := big.NewInt(10)
	created, holder := startSlowTask(t, w, n)
	stopping := running[0]
	require.Equal(t, stopping.ID, holder)

	stopStart := time.Now()
	require.NoError(t, stopping.Stop(), "a worker stopped mid-step must exit 0")
	stoppedIn := time.Since(stopStart)
	require.Less(t, stoppedIn, 2500*time.Millisecond, "the worker must not wait for the 3 s step beyond its 1 s grace")

	successor, err := w.sys.StartWorker(t.Context(), "worker-3")
	require.NoError(t, err)
	task := waitTask(t, w.sys.Client(0), created.UUID, time.Minute)
	t.Logf("%s stopped in %s mid-step; %s finished the task", stopping.ID, stoppedIn.Round(time.Millisecond), successor.ID)
	requireSlowSequenceValues(t, task, n, 1)
	requireHandedBack(t, stepTransitions(t, w.db, created.UUID), stopping.ID, successor.ID)
}

// runningWorkers returns the system's workers that have not exited.
func runningWorkers(sys *harness.System) []*harness.Process {
	var out []*harness.Process
	for _, p := range sys.Workers {
		if p.Running() {
			out = append(out, p)
		}
	}
	return out
}

// requireHandedBack checks the slow step's history: claimed by the
// stopping worker, handed back to enqueued by it, claimed by the successor
// as attempt 1 again, whose outcome is the only one recorded; every step
// completed once.
func requireHandedBack(t *testing.T, history []transition, stopping, successor string) {
	t.Helper()
	var slow []transition
	completed := map[string]int{}
	for _, tr := range history {
		if tr.to == "complete" {
			completed[tr.step]++
		}
		if tr.step == "linear_step_2" && tr.to != "pending" {
			slow = append(slow, tr)
		}
	}
	for step := range mathWorkflows[0].exponents {
		require.Equal(t, 1, completed[step], "transitions of %s to complete: %+v", step, history)
	}
	want := []struct{ to, actor string }{
		{"enqueued", ""}, // by an orchestrator, once step 1 completed
		{"in_progress", stopping},
		{"enqueued", stopping},
		{"in_progress", successor},
		{"enqueued_for_orchestration", successor},
		{"complete", ""},
	}
	require.Len(t, slow, len(want), "history of linear_step_2: %+v", slow)
	for i, tr := range slow {
		require.Equal(t, want[i].to, tr.to, "transition %d of linear_step_2: %+v", i, slow)
		if want[i].actor != "" {
			require.Equal(t, want[i].actor, tr.actor, "transition %d of linear_step_2: %+v", i, slow)
		}
	}
	require.Equal(t, 1, slow[3].attempt, "the handed-back attempt must not count")
}

// transition is one row of tasker.step_transitions, with its step's name.
type transition struct {
	step, to, actor string
	attempt         int
}

// stepTransitions returns the task's step transitions in order.
func stepTransitions(t *testing.T, db *pgtest.Database, taskUUID uuid.UUID) []transition {
	t.Helper()
	rows, err := db.Pool.Query(t.Context(), `
		SELECT ws.name, st.to_state, st.actor, st.attempt
		FROM tasker.step_transitions st JOIN tasker.workflow_steps ws USING (step_uuid)
		WHERE st.task_uuid = $1 ORDER BY st.id`, taskUUID)
	require.NoError(t, err)
	defer rows.Close()
	var out []transition
	for rows.Next() {
		var tr transition
		require.NoError(t, rows.Scan(&tr.step, &tr.to, &tr.actor, &tr.attempt))
		out = append(out, tr)
	}
	require.NoError(t, rows.Err())
	return out
}
