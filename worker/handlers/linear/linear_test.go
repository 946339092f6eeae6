package linear

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker/handlers/internal/squaringtest"
)

func setup() squaringtest.Workflow {
	return squaringtest.Workflow{
		Register:  Register,
		Steps:     steps(),
		Exponents: map[string]int64{Step1: 2, Step2: 4, Step3: 8, Step4: 16},
	}
}

func TestLinearWorkflow(t *testing.T) {
	t.Parallel()
	squaringtest.Suite(t, setup())
}

func TestLinearValuesForSix(t *testing.T) {
	t.Parallel()
	values := setup().Values(t, "6")
	tests := []struct {
		step string
		want string
	}{
		{Step1, "36"},
		{Step2, "1296"},
		{Step3, "1679616"},
		{Step4, "2821109907456"},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, values[tt.step])
		})
	}
}

func TestLinearCallables(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{
		"linear_workflow.LinearStep1Handler",
		"linear_workflow.LinearStep2Handler",
		"linear_workflow.LinearStep3Handler",
		"linear_workflow.LinearStep4Handler",
	}, setup().Registry(t).Callables())
}
