package orchestration

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/template"
)

func TestFiveWorkflowsRunToCompletion(t *testing.T) {
	t.Parallel()
	const n64 = "63340286662973277706162286946811886609896461828096"
	cases := []struct {
		def       template.Definition
		context   string
		finalStep string
		want      string
	}{
		{linearWorkflow(), `{"even_number": 6}`, "linear_step_4", "2821109907456"},
		{diamondWorkflow(), `{"even_number": 6}`, "diamond_end", "2821109907456"},
		{treeWorkflow(), `{"even_number": 6}`, "tree_final_convergence", n64},
		{mixedDAGWorkflow(), `{"even_number": 6}`, "dag_finalize", n64},
		{orderFulfillmentWorkflow(), `{"customer": {"id": 1}, "items": [], "even_number": 2}`, "ship_order", ""},
	}
	for _, tc := range cases {
		t.Run(tc.def.Name, func(t *testing.T) {
			t.Parallel()
			engine, b := setup(t, tc.def)
			task := createTask(t, engine, tc.def, tc.context)
			require.Equal(t, TaskStepsInProcess, task.State)

			drive(t, engine, b, finished(t, engine, task.UUID))

			task, err := engine.GetTask(t.Context(), task.UUID)
			require.NoError(t, err)
			require.Equal(t, TaskComplete, task.State)
			require.NotNil(t, task.CompletedAt)
			require.Len(t, task.Steps, len(tc.def.Steps))
			for _, s := range task.Steps {
				require.Equal(t, StepComplete, s.State, s.Name)
				require.Equal(t, 1, s.Attempts, s.Name)
			}
			require.Empty(t, b.worker.orderViolations())
			if tc.want != "" {
				require.Equal(t, tc.want, stepValue(t, task, tc.finalStep))
			}
			requireTransitions(t, b, task)
		})
	}
}

func TestLinearIntermediateValues(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)
	task := createTask(t, engine, def, `{"even_number": 6}`)
	drive(t, engine, b, finished(t, engine, task.UUID))
	task, err := engine.GetTask(t.Context(), task.UUID)
	require.NoError(t, err)
	for i, want := range []string{"36", "1296", "1679616", "2821109907456"} {
		require.Equal(t, want, stepValue(t, task, fmt.Sprintf("linear_step_%d", i+1)))
	}
}

// requireTransitions checks the recorded history of a completed task: the
// task's chain of states, and for each step the chain pending → enqueued →
// in_progress → enqueued_for_orchestration → complete, with every entry
// naming who made it.
func requireTransitions(t *testing.T, b *bundle, task *Task) {
	t.Helper()
	taskRows, err := b.queries.ListTaskTransitions(t.Context(), b.pool, task.UUID)
	require.NoError(t, err)
	var chain []string
	for i, r := range taskRows {
		require.NotEmpty(t, r.Actor)
		if i == 0 {
			require.Nil(t, r.FromState)
		} else {
			require.Equal(t, chain[len(chain)-1], *r.FromState)
		}
		chain = append(chain, r.ToState)
	}
	require.Equal(t, []string{"pending", "initializing", "enqueuing_steps", "steps_in_process", "complete"}, chain)

	stepRows, err := b.queries.ListStepTransitions(t.Context(), b.pool, task.UUID)
	require.NoError(t, err)
	byStep := map[string][]string{}
	for _, r := range stepRows {
		byStep[r.StepUUID.String()] = append(byStep[r.StepUUID.String()], r.ToState)
		require.NotEmpty(t, r.Actor)
	}
	for _, s := range task.Steps {
		require.Equal(t, []string{"pending", "enqueued", "in_progress", "enqueued_for_orchestration", "complete"},
			byStep[s.UUID.String()], "transitions of %s", s.Name)
	}
}
