package worker

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Registry maps callables (the handler.callable of a template step, e.g.
// "linear_workflow.LinearStep1Handler") to handlers. It is safe for
// concurrent use.
type Registry struct {
	mu       sync.RWMutex
	handlers map[string]StepHandler
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{handlers: map[string]StepHandler{}} }

// Register adds a handler for callable. It refuses an empty callable, a nil
// handler, and a callable that is already registered.
func (r *Registry) Register(callable string, handler StepHandler) error {
	if callable == "" {
		return errors.New("registering a handler: the callable is empty")
	}
	if handler == nil {
		return fmt.Errorf("registering %q: the handler is nil", callable)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.handlers[callable]; ok {
		return fmt.Errorf("registering %q: a handler is already registered for this callable", callable)
	}
	r.handlers[callable] = handler
	return nil
}

// MustRegister is Register for program start-up: it panics on error.
func (r *Registry) MustRegister(callable string, handler StepHandler) {
	if err := r.Register(callable, handler); err != nil {
		panic(err)
	}
}

// Lookup returns the handler for callable.
func (r *Registry) Lookup(callable string) (StepHandler, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.handlers[callable]
	return h, ok
}

// Callables lists the registered callables, sorted.
func (r *Registry) Callables() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.handlers))
	for name := range r.handlers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
