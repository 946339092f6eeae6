package e2e

import (
	"context"
	"encoding/json"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/api"
)

// Size of the many-tasks test.
const (
	tasksPerWorkflow = 40
	submitters       = 8
	manyTasksTimeout = 2 * time.Minute
)

// submitted is a task of the many-tasks test and how to check its result.
type submitted struct {
	id uuid.UUID
	// wf is the math workflow, nil for order fulfillment.
	wf *mathWorkflow
	n  *big.Int
}

// testManyTasks submits 200 tasks of the five workflows at once, from
// several goroutines to both orchestrators, waits until all are complete
// and checks each result.
func testManyTasks(t *testing.T, s *suite) {
	t.Helper()
	jobs := manyTaskJobs(t)
	start := time.Now()
	tasks := submitAll(t, s, jobs)
	submittedIn := time.Since(start)
	waitAllComplete(t, s, tasks)
	elapsed := time.Since(start)
	t.Logf("%d tasks: submitted in %s, all complete after %s (%.1f tasks/s)",
		len(tasks), submittedIn.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(len(tasks))/elapsed.Seconds())

	requireEachStepCompletedOnce(t, s, tasks)
	got := fetchAll(t, s, tasks)
	for i, task := range tasks {
		checkManyTaskResult(t, task, got[i])
	}
}

// job is a task to submit.
type job struct {
	req api.CreateTaskRequest
	submitted
}

// manyTaskJobs returns tasksPerWorkflow tasks of each workflow,
// interleaved; the math ones with N = 2, 4, 6, ...
func manyTaskJobs(t *testing.T) []job {
	t.Helper()
	order := encode(t, sampleOrder(t))
	var jobs []job
	for i := range tasksPerWorkflow {
		n := big.NewInt(int64(2 * (i + 1)))
		for k := range mathWorkflows {
			wf := &mathWorkflows[k]
			jobs = append(jobs, job{
				req:       api.CreateTaskRequest{Namespace: wf.namespace, Name: wf.name, Context: evenNumberContext(n)},
				submitted: submitted{wf: wf, n: n},
			})
		}
		jobs = append(jobs, job{req: api.CreateTaskRequest{Namespace: "order_fulfillment", Name: "business_workflow", Context: order}})
	}
	return jobs
}

// submitAll creates the jobs' tasks from several goroutines, each sending
// to the orchestrators in turn.
func submitAll(t *testing.T, s *suite, jobs []job) []submitted {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out := make([]submitted, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for g := range submitters {
		wg.Go(func() {
			for i := g; i < len(jobs); i += submitters {
				task, err := s.sys.NextClient().CreateTask(ctx, jobs[i].req)
				if err != nil {
					errs[i] = err
					continue
				}
				out[i] = jobs[i].submitted
				out[i].id = task.UUID
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "creating task %d (%s)", i, jobs[i].req.Namespace)
	}
	return out
}

// waitAllComplete polls the database until every task is complete; it
// fails as soon as one settles otherwise, or after manyTasksTimeout.
func waitAllComplete(t *testing.T, s *suite, tasks []submitted) {
	t.Helper()
	ids := taskIDs(tasks)
	ctx, cancel := context.WithTimeout(t.Context(), manyTasksTimeout)
	defer cancel()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		var complete, failed int
		err := s.db.Pool.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE state = 'complete'),
			       count(*) FILTER (WHERE state IN ('blocked_by_failures', 'error', 'cancelled'))
			FROM tasker.tasks WHERE task_uuid = ANY($1)`, ids).Scan(&complete, &failed)
		require.NoError(t, err)
		require.Zero(t, failed, "tasks failed")
		if complete == len(ids) {
			return
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			t.Fatalf("only %d of %d tasks complete after %s", complete, len(ids), manyTasksTimeout)
		}
	}
}

// requireEachStepCompletedOnce checks in the transition history that every
// step of the tasks reached complete exactly once, though two
// orchestrators processed the results side by side.
func requireEachStepCompletedOnce(t *testing.T, s *suite, tasks []submitted) {
	t.Helper()
	ids := taskIDs(tasks)
	var steps, once, more int
	err := s.db.Pool.QueryRow(t.Context(), `
		WITH completions AS (
			SELECT ws.step_uuid, count(st.id) AS n
			FROM tasker.workflow_steps ws
			LEFT JOIN tasker.step_transitions st ON st.step_uuid = ws.step_uuid AND st.to_state = 'complete'
			WHERE ws.task_uuid = ANY($1)
			GROUP BY ws.step_uuid)
		SELECT count(*), count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n > 1) FROM completions`,
		ids).Scan(&steps, &once, &more)
	require.NoError(t, err)
	require.Zero(t, more, "steps completed more than once")
	require.Equal(t, steps, once, "steps completed exactly once")
	require.Equal(t, tasksPerWorkflow*(4+4+8+7+4), steps)
}

// fetchAll gets every task through the API, from a few goroutines.
func fetchAll(t *testing.T, s *suite, tasks []submitted) []*api.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	got := make([]*api.Task, len(tasks))
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for g := range submitters {
		wg.Go(func() {
			for i := g; i < len(tasks); i += submitters {
				got[i], errs[i] = s.sys.NextClient().GetTask(ctx, tasks[i].id)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "getting task %s", tasks[i].id)
	}
	return got
}

// checkManyTaskResult checks that a task completed with the right final
// value.
func checkManyTaskResult(t *testing.T, task submitted, got *api.Task) {
	t.Helper()
	requireComplete(t, got)
	if task.wf == nil {
		require.Equal(t, json.Number("209.97"), stepResult(t, got, "process_payment")["amount_charged"])
		return
	}
	require.Equal(t, power(task.n, task.wf.exponents[task.wf.final]), stepResult(t, got, task.wf.final)["value"],
		"%s N=%s", task.wf.namespace, task.n)
}

// taskIDs returns the tasks' UUIDs.
func taskIDs(tasks []submitted) []uuid.UUID {
	ids := make([]uuid.UUID, len(tasks))
	for i, task := range tasks {
		ids[i] = task.id
	}
	return ids
}
