// Package handlers holds the Go step handlers of tasker's five example
// workflows, one package each (linear, diamond, tree, mixeddag,
// orderfulfillment), and RegisterAll, which registers them all.
package handlers

import (
	"fmt"

	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/diamond"
	"github.com/taskerops/tasker/worker/handlers/linear"
	"github.com/taskerops/tasker/worker/handlers/mixeddag"
	"github.com/taskerops/tasker/worker/handlers/orderfulfillment"
	"github.com/taskerops/tasker/worker/handlers/tree"
)

// Namespaces lists the example workflows' namespaces, the queues a worker
// running RegisterAll's handlers should read.
func Namespaces() []string {
	return []string{
		linear.Namespace,
		diamond.Namespace,
		tree.Namespace,
		mixeddag.Namespace,
		orderfulfillment.Namespace,
	}
}

// RegisterAll registers the handlers of the five example workflows in r.
func RegisterAll(r *worker.Registry) error {
	workflows := []struct {
		namespace string
		register  func(*worker.Registry) error
	}{
		{linear.Namespace, linear.Register},
		{diamond.Namespace, diamond.Register},
		{tree.Namespace, tree.Register},
		{mixeddag.Namespace, mixeddag.Register},
		{orderfulfillment.Namespace, orderfulfillment.Register},
	}
	for _, w := range workflows {
		if err := w.register(r); err != nil {
			return fmt.Errorf("registering the %s example handlers: %w", w.namespace, err)
		}
	}
	return nil
}
