package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/jsonb"
	"github.com/taskerops/tasker/orchestration/template"
)

// CreateTaskRequest asks for a new task of a registered template.
type CreateTaskRequest struct {
	// Namespace and Name identify the template. Required.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Version picks a template version; empty means the highest active one.
	Version string `json:"version,omitempty"`
	// Context is the task's input, checked against the template's input
	// schema. Empty means {}.
	Context json.RawMessage `json:"context,omitempty"`
	// Initiator, SourceSystem and Reason describe who asked and why.
	Initiator    string `json:"initiator,omitempty"`
	SourceSystem string `json:"source_system,omitempty"`
	Reason       string `json:"reason,omitempty"`
	// Priority is recorded with the task (higher is more urgent).
	Priority int `json:"priority,omitempty"`
	// IdempotencyKey, when set, is the task's identity whatever the
	// template's strategy: a second request with the same key for the same
	// template is a duplicate. Required by the caller_provided strategy.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// CorrelationID ties the task to the caller's logs; random when zero.
	CorrelationID uuid.UUID `json:"correlation_id,omitzero"`
}

// CreateTask validates the request and the context, then creates the task
// and a snapshot of its template's steps and edges, enqueues the root steps
// and records the transitions, all in one statement, in a transaction that
// concurrent calls share (group commit, createBatcher): createSQLText for a
// call on its own, createSetSQLText for the calls of a shared transaction
// whose steps go on the same queue. It
// returns once that transaction committed. It fails with
// *InvalidRequestError, *InvalidContextError, *DuplicateTaskError, or an
// error matching ErrNotFound for an unknown or retired template. When ctx
// ends while the call waits for the shared transaction, it returns ctx's
// error at once; the task is still created if its statement was already
// sent.
func (e *Engine) CreateTask(ctx context.Context, req CreateTaskRequest) (*Task, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	for range maxCreateAttempts - 1 {
		task, err := e.createTask(ctx, req)
		if !errors.Is(err, errTemplateChanged) {
			return task, err
		}
	}
	return e.createTask(ctx, req)
}

// maxCreateAttempts bounds how often CreateTask starts over because the
// template was re-registered while it validated the context.
const maxCreateAttempts = 3

// errTemplateChanged means the template changed between validation and the
// creating transaction.
var errTemplateChanged = errors.New("the template changed while the task was being created; try again")

// createTask resolves the template (from the engine's templateCache when
// it can), validates the context against it and computes the identity in
// the caller's goroutine, then has the task written with others
// (createBatched).
func (e *Engine) createTask(ctx context.Context, req CreateTaskRequest) (*Task, error) {
	ref := templateRef{namespace: req.Namespace, name: req.Name, version: req.Version}
	resolved, cached, err := e.resolveTemplate(ctx, ref)
	if err != nil {
		return nil, err
	}
	n, err := e.prepareTask(resolved, req)
	if err != nil && cached {
		// The cached template may be out of date: the request is judged by
		// the stored one.
		e.resolved.forget(ref)
		if resolved, _, err = e.resolveTemplate(ctx, ref); err != nil {
			return nil, err
		}
		n, err = e.prepareTask(resolved, req)
	}
	if err != nil {
		return nil, err
	}
	task, err := e.createBatched(ctx, n)
	switch {
	case err == nil:
		return task, nil
	case errors.Is(err, errTemplateChanged):
		e.resolved.forget(ref)
		return nil, err
	case errors.Is(err, errDuplicateIdentity):
		return e.duplicateOf(ctx, n)
	default:
		return nil, fmt.Errorf("creating task of %s: %w", templateKey(n.tmpl.NamespaceName, n.tmpl.Name, n.tmpl.Version), err)
	}
}

// prepareTask validates req's context against the template and computes the
// task's identity, and returns the task to write.
func (e *Engine) prepareTask(resolved resolvedTemplate, req CreateTaskRequest) (*newTask, error) {
	taskContext, err := e.checkContext(resolved.tmpl, req.Context)
	if err != nil {
		return nil, err
	}
	id, err := taskIdentity(resolved.tmpl, req, taskContext)
	if err != nil {
		return nil, err
	}
	taskUUID, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	correlationID := req.CorrelationID
	if correlationID == uuid.Nil {
		correlationID = uuid.New()
	}
	return &newTask{
		uuid: taskUUID, tmpl: resolved.tmpl, activeVersions: resolved.activeVersions, req: req,
		context: taskContext, identity: id, correlationID: correlationID,
	}, nil
}

// duplicateOf returns the *DuplicateTaskError for n, whose identity another
// task has. That task is n itself when a shared transaction committed but
// its reply was lost and n was then created again on its own: n is then
// returned as created.
func (e *Engine) duplicateOf(ctx context.Context, n *newTask) (*Task, error) {
	existing, err := e.queries.FindTaskByIdentity(ctx, e.pool, n.identity.hash)
	if err != nil {
		return nil, fmt.Errorf("duplicate task identity, and looking up the existing task failed: %w", err)
	}
	if existing == n.uuid {
		return e.GetTask(ctx, existing)
	}
	return nil, &DuplicateTaskError{ExistingTaskUUID: existing, Strategy: template.IdentityStrategy(n.tmpl.IdentityStrategy), ByKey: n.identity.byKey}
}

func (r CreateTaskRequest) validate() error {
	texts := [...]struct{ field, value string }{
		{"namespace", r.Namespace},
		{"name", r.Name},
		{"version", r.Version},
		{"initiator", r.Initiator},
		{"source_system", r.SourceSystem},
		{"reason", r.Reason},
		{"idempotency_key", r.IdempotencyKey},
	}
	for _, text := range texts {
		if err := checkText(text.field, text.value); err != nil {
			return err
		}
	}
	switch {
	case r.Namespace == "":
		return &InvalidRequestError{Field: "namespace", Message: "is required"}
	case r.Name == "":
		return &InvalidRequestError{Field: "name", Message: "is required"}
	case len(r.IdempotencyKey) > 256:
		return &InvalidRequestError{Field: "idempotency_key", Message: "must be at most 256 bytes"}
	case r.Priority < math.MinInt32 || r.Priority > math.MaxInt32:
		return &InvalidRequestError{Field: "priority", Message: fmt.Sprintf("must be between %d and %d", math.MinInt32, math.MaxInt32)}
	}
	return nil
}

// checkContext validates the context against the template's input schema
// and returns it in the form to store.
func (e *Engine) checkContext(tmpl dbsqlc.TaskerTemplate, raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		raw = json.RawMessage(`{}`)
	}
	if err := jsonb.Check(raw); err != nil {
		var problem *jsonb.Error
		errors.As(err, &problem)
		return nil, &InvalidContextError{
			Template:   templateKey(tmpl.NamespaceName, tmpl.Name, tmpl.Version),
			Violations: []template.Violation{{Path: problem.Path, Message: problem.Message}},
		}
	}
	schema, err := e.templates.inputSchema(tmpl)
	if err != nil {
		return nil, err
	}
	if violations := schema.Validate(raw); len(violations) > 0 {
		return nil, &InvalidContextError{
			Template:   templateKey(tmpl.NamespaceName, tmpl.Name, tmpl.Version),
			Violations: violations,
		}
	}
	return raw, nil
}
