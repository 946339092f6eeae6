package orchestration

import (
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestRetentionStatementFromTheOperationsGuide runs the cleanup statement
// that docs/operations.md gives, as written there except for its cutoff:
// it deletes finished tasks with every row that belongs to them, and
// nothing of a task still running.
func TestRetentionStatementFromTheOperationsGuide(t *testing.T) {
	t.Parallel()
	guide, err := os.ReadFile("../docs/operations.md")
	require.NoError(t, err)
	_, rest, found := strings.Cut(string(guide), "```sql\n")
	require.True(t, found, "the guide has an SQL block")
	block, _, found := strings.Cut(rest, "```")
	require.True(t, found)
	const cutoff = "now() - interval '30 days'"
	require.Contains(t, block, cutoff)
	statement := strings.Replace(block, cutoff, "now() + interval '1 day'", 1)

	def := diamondWorkflow()
	engine, b := setup(t, def)
	ctx := t.Context()
	done := []*Task{createTask(t, engine, def, `{"even_number": 2}`), createTask(t, engine, def, `{"even_number": 4}`)}
	drive(t, engine, b, func() bool { return countTasks(t, b, TaskComplete) == len(done) })
	running := createTask(t, engine, def, `{"even_number": 6}`)
	before := retainedRows(t, b, running.UUID)

	_, err = b.pool.Exec(ctx, statement)
	require.NoError(t, err)
	for _, task := range done {
		require.Equal(t, map[string]int{}, retainedRows(t, b, task.UUID), "nothing of finished task %s is left", task.UUID)
	}
	require.Equal(t, before, retainedRows(t, b, running.UUID), "the running task is untouched")
	require.Equal(t, map[string]int{
		"tasker.tasks": 1, "tasker.workflow_steps": 4, "tasker.workflow_step_edges": 4,
		"tasker.task_transitions": 4, "tasker.step_transitions": 5,
	}, before)
}

// retainedRows counts the rows of each table that belong to the task,
// leaving out the tables that have none.
func retainedRows(t *testing.T, b *bundle, task uuid.UUID) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, table := range []string{
		"tasker.tasks", "tasker.workflow_steps", "tasker.workflow_step_edges",
		"tasker.task_transitions", "tasker.step_transitions",
	} {
		var n int
		require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table+" WHERE task_uuid = $1", task).Scan(&n))
		if n > 0 {
			counts[table] = n
		}
	}
	return counts
}
