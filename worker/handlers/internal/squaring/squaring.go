// Package squaring holds the one step handler behind the four math example
// workflows (linear, diamond, tree, mixed DAG): a step squares the product of
// its parents' values, and a root step squares the task's even_number.
//
// Arithmetic is exact (math/big) whatever the input size. Every result is a
// JSON object {"value": "<exact decimal>", "step", "operation", "inputs"}.
package squaring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/internal/jsonnum"
)

// ContextField is the task context field a root step squares.
const ContextField = "even_number"

// Operation is the operation every result reports.
const Operation = "square"

// Error codes of the squaring handler.
const (
	CodeMissingContextField = "MISSING_CONTEXT_FIELD"
	CodeValidation          = "VALIDATION_ERROR"
	CodeMissingDependency   = "MISSING_DEPENDENCY"
	CodeInvalidDependency   = "INVALID_DEPENDENCY_RESULT"
	CodeInvalidInit         = "INVALID_INITIALIZATION"
)

// Step describes one step of a math workflow.
type Step struct {
	// Name is the step's name in the template (e.g. "linear_step_2").
	Name string
	// Callable is the handler callable the template names
	// (e.g. "linear_workflow.LinearStep2Handler").
	Callable string
	// Parents names the steps whose values are multiplied and squared. A
	// step without parents is a root: it squares the context's even_number.
	Parents []string
}

// Result is the JSON result of every squaring step.
type Result struct {
	// Value is the exact decimal value.
	Value string `json:"value"`
	// Step is the name of the step that computed it.
	Step string `json:"step"`
	// Operation is always "square".
	Operation string `json:"operation"`
	// Inputs names what was squared: the parents, or "even_number".
	Inputs []string `json:"inputs"`
}

// Handler is the worker.StepHandler of one squaring step.
type Handler struct {
	step Step
}

// New returns the handler of step.
func New(step Step) *Handler {
	return &Handler{step: Step{Name: step.Name, Callable: step.Callable, Parents: append([]string(nil), step.Parents...)}}
}

// Register registers a handler for each of steps under its callable.
func Register(r *worker.Registry, steps []Step) error {
	for _, s := range steps {
		if err := r.Register(s.Callable, New(s)); err != nil {
			return fmt.Errorf("registering step %q: %w", s.Name, err)
		}
	}
	return nil
}

// Call implements worker.StepHandler: it waits for the optional delay_ms of
// the step's initialization, then squares the root input or the product of
// the parents' values.
func (h *Handler) Call(ctx context.Context, step *worker.TaskSequenceStep) (worker.StepResult, error) {
	if err := h.delay(ctx, step); err != nil {
		return worker.StepResult{}, err
	}
	base, inputs, err := h.base(step)
	if err != nil {
		return worker.StepResult{}, err
	}
	value := new(big.Int).Mul(base, base)
	text := value.String()
	return worker.StepResult{
		Result:   Result{Value: text, Step: h.step.Name, Operation: Operation, Inputs: inputs},
		Metadata: map[string]any{"value_digits": len(text)},
	}, nil
}

// base returns what the step squares and the names of its inputs.
func (h *Handler) base(step *worker.TaskSequenceStep) (*big.Int, []string, error) {
	if len(h.step.Parents) == 0 {
		n, err := EvenNumber(step)
		return n, []string{ContextField}, err
	}
	product := big.NewInt(1)
	for _, parent := range h.step.Parents {
		v, err := ParentValue(step, parent)
		if err != nil {
			return nil, nil, err
		}
		product.Mul(product, v)
	}
	return product, append([]string(nil), h.step.Parents...), nil
}

// EvenNumber reads and checks the context's even_number: missing is a
// permanent MISSING_CONTEXT_FIELD; not an integer, odd or below 2 (the
// template's input schema) is a permanent VALIDATION_ERROR.
func EvenNumber(step *worker.TaskSequenceStep) (*big.Int, error) {
	raw, ok := step.ContextField(ContextField)
	if !ok {
		return nil, worker.PermanentError(CodeMissingContextField,
			"the task context has no "+ContextField, map[string]string{"field": ContextField})
	}
	n, err := jsonnum.Int(raw)
	if err != nil {
		return nil, worker.PermanentError(CodeValidation, "number must be an integer",
			map[string]string{"field": ContextField, "reason": err.Error()})
	}
	if n.Bit(0) != 0 {
		return nil, worker.PermanentError(CodeValidation, "number must be even",
			map[string]string{"field": ContextField, "value": n.String()})
	}
	if n.Cmp(big.NewInt(2)) < 0 {
		return nil, worker.PermanentError(CodeValidation, "number must be at least 2",
			map[string]string{"field": ContextField, "value": n.String()})
	}
	return n, nil
}

// ParentValue reads the value of the named parent's result. A missing
// result is a retryable MISSING_DEPENDENCY; a result without a decimal
// value is a permanent INVALID_DEPENDENCY_RESULT.
func ParentValue(step *worker.TaskSequenceStep, parent string) (*big.Int, error) {
	var res struct {
		Value json.RawMessage `json:"value"`
	}
	err := step.DependencyResult(parent, &res)
	if errors.Is(err, worker.ErrMissingDependency) {
		return nil, worker.RetryableError(CodeMissingDependency, err.Error(), 0)
	}
	if err == nil && len(res.Value) == 0 {
		return nil, worker.RetryableError(CodeMissingDependency,
			fmt.Sprintf("the result of step %q has no value", parent), 0)
	}
	var v *big.Int
	if err == nil {
		v, err = decimal(res.Value)
	}
	if err != nil {
		return nil, worker.PermanentError(CodeInvalidDependency,
			fmt.Sprintf("the result of step %q has no integer value", parent),
			map[string]string{"step": parent, "reason": err.Error()})
	}
	return v, nil
}

// decimal reads a value written as a decimal string ("36") or as a JSON
// number (36).
func decimal(raw json.RawMessage) (*big.Int, error) {
	var text string
	if json.Unmarshal(raw, &text) != nil {
		return jsonnum.Int(raw)
	}
	v, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return nil, fmt.Errorf("%.40q is not a decimal integer", text)
	}
	return v, nil
}
