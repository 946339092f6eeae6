// Package tree registers the handlers of the tree example workflow
// (tree_workflow / hierarchical_tree / 1.0.0): tree_root squares the
// context's even_number, two branches square the root, four leaves square
// their branch, and tree_final_convergence squares the product of the
// leaves, giving N^64.
package tree

import (
	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/internal/squaring"
)

// The workflow's template identity.
const (
	Namespace = "tree_workflow"
	Name      = "hierarchical_tree"
	Version   = "1.0.0"
)

// Step names, in topological order.
const (
	Root             = "tree_root"
	BranchLeft       = "tree_branch_left"
	BranchRight      = "tree_branch_right"
	LeafD            = "tree_leaf_d"
	LeafE            = "tree_leaf_e"
	LeafF            = "tree_leaf_f"
	LeafG            = "tree_leaf_g"
	FinalConvergence = "tree_final_convergence"
)

// Handler callables, as the template's steps name them.
const (
	RootHandler             = Namespace + ".TreeRootHandler"
	BranchLeftHandler       = Namespace + ".TreeBranchLeftHandler"
	BranchRightHandler      = Namespace + ".TreeBranchRightHandler"
	LeafDHandler            = Namespace + ".TreeLeafDHandler"
	LeafEHandler            = Namespace + ".TreeLeafEHandler"
	LeafFHandler            = Namespace + ".TreeLeafFHandler"
	LeafGHandler            = Namespace + ".TreeLeafGHandler"
	FinalConvergenceHandler = Namespace + ".TreeFinalConvergenceHandler"
)

// steps lists the workflow's steps in topological order with their parents.
func steps() []squaring.Step {
	return []squaring.Step{
		{Name: Root, Callable: RootHandler},
		{Name: BranchLeft, Callable: BranchLeftHandler, Parents: []string{Root}},
		{Name: BranchRight, Callable: BranchRightHandler, Parents: []string{Root}},
		{Name: LeafD, Callable: LeafDHandler, Parents: []string{BranchLeft}},
		{Name: LeafE, Callable: LeafEHandler, Parents: []string{BranchLeft}},
		{Name: LeafF, Callable: LeafFHandler, Parents: []string{BranchRight}},
		{Name: LeafG, Callable: LeafGHandler, Parents: []string{BranchRight}},
		{Name: FinalConvergence, Callable: FinalConvergenceHandler, Parents: []string{LeafD, LeafE, LeafF, LeafG}},
	}
}

// Register registers every handler of the workflow in r.
func Register(r *worker.Registry) error {
	return squaring.Register(r, steps())
}
