package tree

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker/handlers/internal/squaringtest"
)

func setup() squaringtest.Workflow {
	return squaringtest.Workflow{
		Register: Register,
		Steps:    steps(),
		Exponents: map[string]int64{
			Root: 2, BranchLeft: 4, BranchRight: 4,
			LeafD: 8, LeafE: 8, LeafF: 8, LeafG: 8,
			FinalConvergence: 64,
		},
	}
}

func TestTreeWorkflow(t *testing.T) {
	t.Parallel()
	squaringtest.Suite(t, setup())
}

func TestTreeFinalValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    string
		want string
	}{
		{"6", "63340286662973277706162286946811886609896461828096"},
		{"2", "18446744073709551616"},
		{"1000000000000000000000000000000", "1" + strings.Repeat("0", 30*64)},
	}
	for _, tt := range tests {
		t.Run("N="+tt.n, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, setup().Values(t, tt.n)[FinalConvergence])
		})
	}
}

func TestTreeCallables(t *testing.T) {
	t.Parallel()
	require.ElementsMatch(t, []string{
		"tree_workflow.TreeRootHandler",
		"tree_workflow.TreeBranchLeftHandler",
		"tree_workflow.TreeBranchRightHandler",
		"tree_workflow.TreeLeafDHandler",
		"tree_workflow.TreeLeafEHandler",
		"tree_workflow.TreeLeafFHandler",
		"tree_workflow.TreeLeafGHandler",
		"tree_workflow.TreeFinalConvergenceHandler",
	}, setup().Registry(t).Callables())
}
