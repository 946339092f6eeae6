// Package diamond registers the handlers of the diamond example workflow
// (diamond_workflow / diamond_pattern / 1.0.0): diamond_start squares the
// context's even_number, two branches each square the start, and
// diamond_end squares the product of the branches, giving N^16.
package diamond

import (
	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/internal/squaring"
)

// The workflow's template identity.
const (
	Namespace = "diamond_workflow"
	Name      = "diamond_pattern"
	Version   = "1.0.0"
)

// Step names, in topological order.
const (
	Start   = "diamond_start"
	BranchB = "diamond_branch_b"
	BranchC = "diamond_branch_c"
	End     = "diamond_end"
)

// Handler callables, as the template's steps name them.
const (
	StartHandler   = Namespace + ".DiamondStartHandler"
	BranchBHandler = Namespace + ".DiamondBranchBHandler"
	BranchCHandler = Namespace + ".DiamondBranchCHandler"
	EndHandler     = Namespace + ".DiamondEndHandler"
)

// steps lists the workflow's steps in topological order with their parents.
func steps() []squaring.Step {
	return []squaring.Step{
		{Name: Start, Callable: StartHandler},
		{Name: BranchB, Callable: BranchBHandler, Parents: []string{Start}},
		{Name: BranchC, Callable: BranchCHandler, Parents: []string{Start}},
		{Name: End, Callable: EndHandler, Parents: []string{BranchB, BranchC}},
	}
}

// Register registers every handler of the workflow in r.
func Register(r *worker.Registry) error {
	return squaring.Register(r, steps())
}
