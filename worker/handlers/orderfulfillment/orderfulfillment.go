// Package orderfulfillment registers the handlers of the order fulfillment
// example workflow (order_fulfillment / business_workflow / 1.0.0):
// validate_order → reserve_inventory → process_payment → ship_order, each
// later step reading the results of the steps before it.
//
// Money is integer cents throughout (see Cents); prices are read exactly
// from the context's JSON numbers and amounts are written back as JSON
// numbers with two decimals.
package orderfulfillment

import (
	"errors"
	"fmt"
	"time"

	"github.com/taskerops/tasker/worker"
)

// The workflow's template identity.
const (
	Namespace = "order_fulfillment"
	Name      = "business_workflow"
	Version   = "1.0.0"
)

// Step names, in topological order.
const (
	ValidateOrder    = "validate_order"
	ReserveInventory = "reserve_inventory"
	ProcessPayment   = "process_payment"
	ShipOrder        = "ship_order"
)

// Handler callables, as the template's steps name them.
const (
	ValidateOrderHandler    = Namespace + ".ValidateOrderHandler"
	ReserveInventoryHandler = Namespace + ".ReserveInventoryHandler"
	ProcessPaymentHandler   = Namespace + ".ProcessPaymentHandler"
	ShipOrderHandler        = Namespace + ".ShipOrderHandler"
)

// Error codes shared by the steps. Each step's own codes are next to it.
const (
	// CodeMissingDependency is retryable: an earlier step's result is not
	// there yet.
	CodeMissingDependency = "MISSING_DEPENDENCY"
	// CodeInvalidDependency is permanent: an earlier step's result cannot
	// be read.
	CodeInvalidDependency = "INVALID_DEPENDENCY_RESULT"
	// CodeProductNotFound is permanent: a SKU is not in the catalog.
	CodeProductNotFound = "PRODUCT_NOT_FOUND"
)

// Config holds what the handlers take from their environment.
type Config struct {
	// Now returns the current time, which stamps validated_at, expires_at,
	// processed_at and estimated_delivery. Default: time.Now.
	Now func() time.Time
}

// withDefaults returns c with every unset field set to its default.
func (c Config) withDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Register registers every handler of the workflow in r.
func Register(r *worker.Registry) error {
	return RegisterWithConfig(r, Config{})
}

// RegisterWithConfig is Register with an explicit configuration.
func RegisterWithConfig(r *worker.Registry, cfg Config) error {
	cfg = cfg.withDefaults()
	handlers := []struct {
		callable string
		handler  worker.StepHandler
	}{
		{ValidateOrderHandler, &validateOrder{now: cfg.Now}},
		{ReserveInventoryHandler, &reserveInventory{now: cfg.Now}},
		{ProcessPaymentHandler, &processPayment{now: cfg.Now}},
		{ShipOrderHandler, &shipOrder{now: cfg.Now}},
	}
	for _, h := range handlers {
		if err := r.Register(h.callable, h.handler); err != nil {
			return fmt.Errorf("registering the %s workflow: %w", Namespace, err)
		}
	}
	return nil
}

// dependency decodes the result of an earlier step into v: a missing result
// is a retryable MISSING_DEPENDENCY, an unreadable one a permanent
// INVALID_DEPENDENCY_RESULT.
func dependency(step *worker.TaskSequenceStep, name string, v any) error {
	err := step.DependencyResult(name, v)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, worker.ErrMissingDependency):
		return worker.RetryableError(CodeMissingDependency, err.Error(), 0)
	default:
		return worker.PermanentError(CodeInvalidDependency, err.Error(), map[string]string{"step": name})
	}
}

// validated reads validate_order's result and checks it has items.
func validated(step *worker.TaskSequenceStep) (ValidatedOrder, error) {
	var order ValidatedOrder
	if err := dependency(step, ValidateOrder, &order); err != nil {
		return ValidatedOrder{}, err
	}
	if len(order.ValidatedItems) == 0 {
		return ValidatedOrder{}, worker.PermanentError(CodeInvalidDependency,
			"the result of validate_order has no validated_items", map[string]string{"step": ValidateOrder})
	}
	return order, nil
}
