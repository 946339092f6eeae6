package orchestration

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/queue"
)

func TestSettleCompleteSQLFor(t *testing.T) {
	// Not parallel: it empties the package's statement cache.
	one := settleCompleteSQLFor([]string{"diamond_workflow"})
	require.Contains(t, one, `"pgmq"."q_diamond_workflow_queue"`)
	require.Contains(t, one, "pg_notify('"+queue.Channel("diamond_workflow_queue")+"', 'diamond_workflow_queue')", "the queue's channel")
	two := settleCompleteSQLFor([]string{"diamond_workflow", "linear_workflow"})
	require.Contains(t, two, "sent_1")
	require.Contains(t, two, `"pgmq"."q_linear_workflow_queue"`)
	require.Equal(t, one, settleCompleteSQLFor([]string{"diamond_workflow"}), "the same statement again")

	// The cache is bounded: past maxSettleStatements it starts empty again.
	for i := range 2 * maxSettleStatements {
		settleCompleteSQLFor([]string{fmt.Sprintf("ns_%d", i)})
	}
	require.LessOrEqual(t, settleStatementCount.Load(), int64(maxSettleStatements))
	n := 0
	settleStatements.Range(func(any, any) bool { n++; return true })
	require.LessOrEqual(t, n, maxSettleStatements)
}
