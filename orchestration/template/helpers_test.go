package template

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// diamond returns a valid definition: diamond_start, then diamond_branch_b and
// diamond_branch_c that both depend on it, then diamond_end that depends on both.
func diamond() Definition {
	return Definition{
		NamespaceName: "diamond_workflow",
		Name:          "diamond_pattern",
		Version:       "1.0.0",
		Description:   "fan out and back in",
		InputSchema: json.RawMessage(`{"type":"object","required":["even_number"],
			"properties":{"even_number":{"type":"integer","minimum":2,"multipleOf":2}}}`),
		Steps: []Step{
			{Name: "diamond_start", Handler: Handler{Callable: "diamond_workflow.DiamondStartHandler"}},
			{
				Name:      "diamond_branch_b",
				Handler:   Handler{Callable: "diamond_workflow.DiamondBranchBHandler"},
				DependsOn: []string{"diamond_start"},
			},
			{
				Name:      "diamond_branch_c",
				Handler:   Handler{Callable: "diamond_workflow.DiamondBranchCHandler"},
				DependsOn: []string{"diamond_start"},
			},
			{
				Name:      "diamond_end",
				Handler:   Handler{Callable: "diamond_workflow.DiamondEndHandler"},
				DependsOn: []string{"diamond_branch_b", "diamond_branch_c"},
			},
		},
	}
}

// chain returns steps named after the keys of deps, in the given order, each
// depending on the listed steps.
func chain(names []string, deps map[string][]string) []Step {
	steps := make([]Step, len(names))
	for i, name := range names {
		steps[i] = Step{Name: name, Handler: Handler{Callable: "h." + name}, DependsOn: deps[name]}
	}
	return steps
}

// problemsOf returns the problems carried by err, which must be a *ValidationError.
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	require.Error(t, err)
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	return verr.Problems
}
