package diamond

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker/handlers/internal/squaringtest"
)

func setup() squaringtest.Workflow {
	return squaringtest.Workflow{
		Register:  Register,
		Steps:     steps(),
		Exponents: map[string]int64{Start: 2, BranchB: 4, BranchC: 4, End: 16},
	}
}

func TestDiamondWorkflow(t *testing.T) {
	t.Parallel()
	squaringtest.Suite(t, setup())
}

func TestDiamondFinalValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    string
		want string
	}{
		{"6", "2821109907456"},
		{"2", "65536"},
		{"10000000000", "1" + strings.Repeat("0", 160)},
	}
	for _, tt := range tests {
		t.Run("N="+tt.n, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, setup().Values(t, tt.n)[End])
		})
	}
}

func TestDiamondCallables(t *testing.T) {
	t.Parallel()
	require.ElementsMatch(t, []string{
		"diamond_workflow.DiamondStartHandler",
		"diamond_workflow.DiamondBranchBHandler",
		"diamond_workflow.DiamondBranchCHandler",
		"diamond_workflow.DiamondEndHandler",
	}, setup().Registry(t).Callables())
}
