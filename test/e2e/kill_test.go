package e2e

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// slowSequence is the linear workflow with a slow second step (3 s, with a
// 5 s timeout), so that a test can kill the worker running it.
const slowSequence = `apiVersion: workflows.tasker.dev/v1alpha1
kind: TaskTemplate
metadata:
  name: slow-sequence
spec:
  namespaceName: linear_workflow
  name: slow_sequence
  version: 1.0.0
  identityStrategy: always_unique
  inputSchema:
    type: object
    required: [even_number]
    properties:
      even_number: {type: integer, minimum: 2, multipleOf: 2}
  steps:
    - name: linear_step_1
      handler: {callable: linear_workflow.LinearStep1Handler}
    - name: linear_step_2
      handler:
        callable: linear_workflow.LinearStep2Handler
        initialization: {delay_ms: 3000}
      dependsOn: [linear_step_1]
      timeoutSeconds: 5
    - name: linear_step_3
      handler: {callable: linear_workflow.LinearStep3Handler}
      dependsOn: [linear_step_2]
    - name: linear_step_4
      handler: {callable: linear_workflow.LinearStep4Handler}
      dependsOn: [linear_step_3]
`

// workerSystem is the dedicated system of the worker-failure tests: one
// orchestrator and two workers serving linear_workflow only, tuned so that
// a dead worker's claim expires within seconds.
type workerSystem struct {
	sys *harness.System
	db  *pgtest.Database
}

// testWorkerFailures runs, on a dedicated system, a worker killed with
// SIGKILL mid-step, then a worker stopped with SIGTERM mid-step, then
// stops the rest.
func testWorkerFailures(t *testing.T, bin string) {
	t.Helper()
	w := setupWorkerSystem(t, bin)
	if !t.Run("sigkill_mid_step", func(t *testing.T) { testWorkerKilledMidStep(t, w) }) {
		return
	}
	t.Run("sigterm_mid_step_hands_back", func(t *testing.T) { testWorkerStoppedMidStep(t, w) })
	t.Run("sigterm_exits_zero", func(t *testing.T) {
		require.NoError(t, w.sys.StopRunning(), "the workers and the orchestrator must exit 0 on SIGTERM")
	})
}

// setupWorkerSystem registers the slow sequence on a fresh database and
// starts the dedicated system: claims last the step's timeout plus 1 s,
// messages are hidden 2 s, and running steps get 1 s to finish on SIGTERM.
func setupWorkerSystem(t *testing.T, bin string) *workerSystem {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	db := pgtest.NewEmptyDatabase(t)
	dir := t.TempDir()
	manifest := filepath.Join(dir, "slow_sequence.yaml")
	require.NoError(t, os.WriteFile(manifest, []byte(slowSequence), 0o600))
	require.NoError(t, harness.Migrate(ctx, bin, db.URL))
	require.NoError(t, harness.ApplyTemplates(ctx, bin, db.URL, manifest))
	sys, err := harness.Start(ctx, harness.Options{
		Binary: bin, DatabaseURL: db.URL, Dir: dir, Orchestrators: 1, Workers: 2,
		Namespaces: []string{"linear_workflow"}, IDPrefix: "solo-",
		OrchestratorArgs: []string{"--poll-interval", "200ms", "--sweep-interval", "1s", "--lease-grace", "2s"},
		WorkerArgs: []string{
			"--poll-interval", "200ms", "--visibility-timeout", "2s", "--lease-margin", "1s", "--shutdown-grace", "1s",
		},
	})
	require.NoError(t, err)
	cleanupSystem(t, sys)
	return &workerSystem{sys: sys, db: db}
}

// startSlowTask creates a slow-sequence task and waits until its slow step
// runs; it returns the task and the id of the worker running the step.
func startSlowTask(t *testing.T, w *workerSystem, n *big.Int) (*api.Task, string) {
	t.Helper()
	c := w.sys.Client(0)
	created := createTask(t, c, "linear_workflow", "slow_sequence", evenNumberContext(n))
	_, err := pollTask(t.Context(), c, created.UUID, 30*time.Second, func(task *api.Task) bool {
		return task.Step("linear_step_2").State == "in_progress"
	})
	require.NoError(t, err, "linear_step_2 never ran")
	var holder string
	require.NoError(t, w.db.Pool.QueryRow(t.Context(),
		`SELECT claimed_by FROM tasker.workflow_steps WHERE task_uuid = $1 AND name = 'linear_step_2'`,
		created.UUID).Scan(&holder))
	return created, holder
}

// testWorkerKilledMidStep kills, with SIGKILL, the worker running a slow
// step. The other worker must take the step over once the claim expires;
// the task completes with the right values, and every step's outcome is
// recorded exactly once, by a live worker.
func testWorkerKilledMidStep(t *testing.T, w *workerSystem) {
	t.Helper()
	n := big.NewInt(6)
	created, holder := startSlowTask(t, w, n)
	victim, survivor := splitWorkers(t, w.sys, holder)
	require.NoError(t, victim.Kill())
	killedAt := time.Now()

	task := waitTask(t, w.sys.Client(0), created.UUID, time.Minute)
	t.Logf("%s killed mid-step; %s finished the task %s later", victim.ID, survivor.ID, time.Since(killedAt).Round(time.Millisecond))
	requireSlowSequenceValues(t, task, n, 2)
	requireRecordedOnce(t, stepTransitions(t, w.db, created.UUID), victim.ID, survivor.ID)
	require.Error(t, victim.ExitError(), "the killed worker cannot have exited 0")
}

// requireSlowSequenceValues checks that the task completed with N's powers
// and that the slow step took slowAttempts attempts, the others one.
func requireSlowSequenceValues(t *testing.T, task *api.Task, n *big.Int, slowAttempts int) {
	t.Helper()
	requireComplete(t, task)
	for step, exp := range mathWorkflows[0].exponents {
		require.Equal(t, power(n, exp), stepResult(t, task, step)["value"], "step %s", step)
		want := 1
		if step == "linear_step_2" {
			want = slowAttempts
		}
		require.Equal(t, want, task.Step(step).Attempts, "attempts of %s", step)
	}
}

// splitWorkers returns the worker whose id is holder, and the other one.
func splitWorkers(t *testing.T, sys *harness.System, holder string) (victim, survivor *harness.Process) {
	t.Helper()
	require.Len(t, sys.Workers, 2)
	for i, w := range sys.Workers {
		if w.ID == holder {
			return w, sys.Workers[1-i]
		}
	}
	t.Fatalf("linear_step_2 is claimed by %q, which is none of the workers", holder)
	return nil, nil
}

// requireRecordedOnce checks the history: every step reached complete
// once and had one outcome recorded, none by the killed worker after its
// death (it may have run linear_step_1 before); the slow step was claimed
// by the victim (attempt 1), then by the survivor (attempt 2), whose
// outcome is the one recorded.
func requireRecordedOnce(t *testing.T, history []transition, victim, survivor string) {
	t.Helper()
	completed := map[string]int{}
	outcomes := map[string][]transition{}
	var claims []transition
	for _, tr := range history {
		switch {
		case tr.to == "complete":
			completed[tr.step]++
		case tr.to == "enqueued_for_orchestration" || tr.to == "enqueued_as_error_for_orchestration":
			outcomes[tr.step] = append(outcomes[tr.step], tr)
			if tr.step != "linear_step_1" { // which the victim may have run, alive, before the kill
				require.NotEqual(t, victim, tr.actor, "the killed worker recorded an outcome of %s", tr.step)
			}
		case tr.to == "in_progress" && tr.step == "linear_step_2":
			claims = append(claims, tr)
		}
	}
	for step := range mathWorkflows[0].exponents {
		require.Equal(t, 1, completed[step], "transitions of %s to complete: %+v", step, history)
		require.Len(t, outcomes[step], 1, "outcomes of %s: %+v", step, history)
		require.Equal(t, "enqueued_for_orchestration", outcomes[step][0].to, step)
	}
	slow := outcomes["linear_step_2"][0]
	require.Equal(t, survivor, slow.actor)
	require.Equal(t, 2, slow.attempt)
	require.Len(t, claims, 2, "claims of linear_step_2: %+v", history)
	require.Equal(t, transition{step: "linear_step_2", to: "in_progress", actor: victim, attempt: 1}, claims[0])
	require.Equal(t, transition{step: "linear_step_2", to: "in_progress", actor: survivor, attempt: 2}, claims[1])
}
