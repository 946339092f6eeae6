package mixeddag

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
			Init: 2, ProcessLeft: 4, ProcessRight: 4,
			Validate: 16, Transform: 8, Analyze: 8,
			Finalize: 64,
		},
	}
}

func TestMixedDAGWorkflow(t *testing.T) {
	t.Parallel()
	squaringtest.Suite(t, setup())
}

func TestMixedDAGFinalValue(t *testing.T) {
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
			require.Equal(t, tt.want, setup().Values(t, tt.n)[Finalize])
		})
	}
}

func TestMixedDAGCallables(t *testing.T) {
	t.Parallel()
	require.ElementsMatch(t, []string{
		"mixed_dag_workflow.DagInitHandler",
		"mixed_dag_workflow.DagProcessLeftHandler",
		"mixed_dag_workflow.DagProcessRightHandler",
		"mixed_dag_workflow.DagValidateHandler",
		"mixed_dag_workflow.DagTransformHandler",
		"mixed_dag_workflow.DagAnalyzeHandler",
		"mixed_dag_workflow.DagFinalizeHandler",
	}, setup().Registry(t).Callables())
}
