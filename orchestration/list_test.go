package orchestration

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// listUUIDs returns the UUIDs of a page's tasks, in page order.
func listUUIDs(page *TaskPage) []uuid.UUID {
	ids := make([]uuid.UUID, len(page.Tasks))
	for i, task := range page.Tasks {
		ids[i] = task.UUID
	}
	return ids
}

func TestListTasks(t *testing.T) {
	t.Parallel()
	linear, diamond := linearWorkflow(), diamondWorkflow()
	engine, b := setup(t, linear, diamond)
	ctx := t.Context()

	first := createTask(t, engine, linear, `{"even_number": 2}`)
	second := createTask(t, engine, linear, `{"even_number": 4}`)
	third := createTask(t, engine, diamond, `{"even_number": 6}`)

	t.Run("NewestFirstWithDefaults", func(t *testing.T) {
		page, err := engine.ListTasks(ctx, ListTasksOptions{})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{third.UUID, second.UUID, first.UUID}, listUUIDs(page))
		require.Equal(t, 3, page.Total)
		require.Equal(t, 1, page.Page)
		require.Equal(t, DefaultPerPage, page.PerPage)
		require.Equal(t, []int{0, 0, 0}, page.CompletedSteps)
		for _, task := range page.Tasks {
			require.Empty(t, task.Steps, "a listed task has no steps")
			require.Equal(t, 4, task.StepCount)
		}
	})

	t.Run("ByNamespace", func(t *testing.T) {
		page, err := engine.ListTasks(ctx, ListTasksOptions{Namespace: "linear_workflow"})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{second.UUID, first.UUID}, listUUIDs(page))
		require.Equal(t, 2, page.Total)
	})

	t.Run("Paging", func(t *testing.T) {
		page, err := engine.ListTasks(ctx, ListTasksOptions{Page: 2, PerPage: 2})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{first.UUID}, listUUIDs(page))
		require.Equal(t, 3, page.Total)

		page, err = engine.ListTasks(ctx, ListTasksOptions{Page: 5, PerPage: 2})
		require.NoError(t, err)
		require.Empty(t, page.Tasks, "a page past the end is empty")
		require.Equal(t, 3, page.Total)
	})

	t.Run("Invalid", func(t *testing.T) {
		cases := map[string]ListTasksOptions{
			"state":    {State: "running"},
			"page":     {Page: -1},
			"per_page": {PerPage: MaxPerPage + 1},
		}
		for field, opts := range cases {
			_, err := engine.ListTasks(ctx, opts)
			var invalid *InvalidRequestError
			require.ErrorAs(t, err, &invalid, field)
			require.Equal(t, field, invalid.Field)
		}
		_, err := engine.ListTasks(ctx, ListTasksOptions{State: "running"})
		require.ErrorContains(t, err, `"running" is not a task state; valid states: pending, initializing,`)
	})

	t.Run("ByStateWithProgress", func(t *testing.T) {
		drive(t, engine, b, func() bool {
			return finished(t, engine, first.UUID)() && finished(t, engine, second.UUID)() && finished(t, engine, third.UUID)()
		})
		page, err := engine.ListTasks(ctx, ListTasksOptions{State: string(TaskComplete)})
		require.NoError(t, err)
		require.Equal(t, 3, page.Total, "the worker ran every task")
		require.Equal(t, []int{4, 4, 4}, page.CompletedSteps)
	})
}
