package orchestration

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/internal/dbtx"
	"github.com/taskerops/tasker/orchestration/template"
)

// ErrNotFound wraps every lookup that matched nothing (task, step,
// template); errors.Is(err, ErrNotFound) holds for them.
var ErrNotFound = dbtx.ErrNotFound

// ErrTemplateRetired is returned when a task names a template version that
// was retired; it also matches ErrNotFound.
var ErrTemplateRetired = fmt.Errorf("template retired: %w", ErrNotFound)

// InvalidRequestError reports a request field that is missing or wrong.
type InvalidRequestError struct {
	Field   string
	Message string
}

func (e *InvalidRequestError) Error() string { return e.Field + ": " + e.Message }

// InvalidContextError reports every way a task context violates the
// template's input schema, each with its JSON path.
type InvalidContextError struct {
	Template   string
	Violations []template.Violation
}

func (e *InvalidContextError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.String()
	}
	return fmt.Sprintf("context does not match the input schema of %s: %s", e.Template, strings.Join(parts, "; "))
}

// DuplicateTaskError reports a task whose identity matches an existing one.
type DuplicateTaskError struct {
	// ExistingTaskUUID is the task that already has this identity.
	ExistingTaskUUID uuid.UUID
	// Strategy is how the identity was computed.
	Strategy template.IdentityStrategy
	// ByKey is true when the identity came from an idempotency key.
	ByKey bool
}

func (e *DuplicateTaskError) Error() string {
	basis := "the same context (identity strategy " + string(e.Strategy) + ")"
	if e.ByKey {
		basis = "the same idempotency key"
	}
	return fmt.Sprintf("duplicate task: task %s already exists with %s", e.ExistingTaskUUID, basis)
}

// StateConflictError reports an operation that the current state of a task
// or step does not allow, e.g. retrying a step that has not failed.
type StateConflictError struct {
	What  string
	State string
	Want  string
}

func (e *StateConflictError) Error() string {
	return fmt.Sprintf("%s is %s; this needs %s", e.What, e.State, e.Want)
}

// TemplateConflictError reports a registration of namespace/name/version
// that another owner already registered with a different definition.
type TemplateConflictError struct {
	Key   string
	Owner string
}

func (e *TemplateConflictError) Error() string {
	return fmt.Sprintf("template %s is already registered by %q with a different definition", e.Key, e.Owner)
}

// IsConflict reports whether err is one of the conflict errors.
func IsConflict(err error) bool {
	var dup *DuplicateTaskError
	var state *StateConflictError
	var tmpl *TemplateConflictError
	return errors.As(err, &dup) || errors.As(err, &state) || errors.As(err, &tmpl)
}
