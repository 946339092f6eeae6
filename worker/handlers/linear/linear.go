// Package linear registers the handlers of the linear example workflow
// (linear_workflow / mathematical_sequence / 1.0.0): four steps in a chain,
// each squaring its parent, the first squaring the context's even_number, so
// that the last step's value is N^16.
package linear

import (
	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/internal/squaring"
)

// The workflow's template identity.
const (
	Namespace = "linear_workflow"
	Name      = "mathematical_sequence"
	Version   = "1.0.0"
)

// Step names, in topological order.
const (
	Step1 = "linear_step_1"
	Step2 = "linear_step_2"
	Step3 = "linear_step_3"
	Step4 = "linear_step_4"
)

// Handler callables, as the template's steps name them.
const (
	Step1Handler = Namespace + ".LinearStep1Handler"
	Step2Handler = Namespace + ".LinearStep2Handler"
	Step3Handler = Namespace + ".LinearStep3Handler"
	Step4Handler = Namespace + ".LinearStep4Handler"
)

// steps lists the workflow's steps in topological order with their parents.
func steps() []squaring.Step {
	return []squaring.Step{
		{Name: Step1, Callable: Step1Handler},
		{Name: Step2, Callable: Step2Handler, Parents: []string{Step1}},
		{Name: Step3, Callable: Step3Handler, Parents: []string{Step2}},
		{Name: Step4, Callable: Step4Handler, Parents: []string{Step3}},
	}
}

// Register registers every handler of the workflow in r.
func Register(r *worker.Registry) error {
	return squaring.Register(r, steps())
}
