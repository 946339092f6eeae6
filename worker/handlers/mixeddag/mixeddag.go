// Package mixeddag registers the handlers of the mixed DAG example workflow
// (mixed_dag_workflow / complex_dag / 1.0.0): dag_init squares the context's
// even_number; left and right square init; validate squares left × right,
// transform squares left, analyze squares right; dag_finalize squares
// validate × transform × analyze, giving N^64.
package mixeddag

import (
	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/internal/squaring"
)

// The workflow's template identity.
const (
	Namespace = "mixed_dag_workflow"
	Name      = "complex_dag"
	Version   = "1.0.0"
)

// Step names, in topological order.
const (
	Init         = "dag_init"
	ProcessLeft  = "dag_process_left"
	ProcessRight = "dag_process_right"
	Validate     = "dag_validate"
	Transform    = "dag_transform"
	Analyze      = "dag_analyze"
	Finalize     = "dag_finalize"
)

// Handler callables, as the template's steps name them.
const (
	InitHandler         = Namespace + ".DagInitHandler"
	ProcessLeftHandler  = Namespace + ".DagProcessLeftHandler"
	ProcessRightHandler = Namespace + ".DagProcessRightHandler"
	ValidateHandler     = Namespace + ".DagValidateHandler"
	TransformHandler    = Namespace + ".DagTransformHandler"
	AnalyzeHandler      = Namespace + ".DagAnalyzeHandler"
	FinalizeHandler     = Namespace + ".DagFinalizeHandler"
)

// steps lists the workflow's steps in topological order with their parents.
func steps() []squaring.Step {
	return []squaring.Step{
		{Name: Init, Callable: InitHandler},
		{Name: ProcessLeft, Callable: ProcessLeftHandler, Parents: []string{Init}},
		{Name: ProcessRight, Callable: ProcessRightHandler, Parents: []string{Init}},
		{Name: Validate, Callable: ValidateHandler, Parents: []string{ProcessLeft, ProcessRight}},
		{Name: Transform, Callable: TransformHandler, Parents: []string{ProcessLeft}},
		{Name: Analyze, Callable: AnalyzeHandler, Parents: []string{ProcessRight}},
		{Name: Finalize, Callable: FinalizeHandler, Parents: []string{Validate, Transform, Analyze}},
	}
}

// Register registers every handler of the workflow in r.
func Register(r *worker.Registry) error {
	return squaring.Register(r, steps())
}
