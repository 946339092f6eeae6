package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/dbtx"
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

// CreateTask validates the request and the context, then in one transaction
// creates the task and a snapshot of its template's steps and edges,
// enqueues the root steps and records the transitions. It fails with
// *InvalidRequestError, *InvalidContextError, *DuplicateTaskError, or an
// error matching ErrNotFound for an unknown or retired template.
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

func (e *Engine) createTask(ctx context.Context, req CreateTaskRequest) (*Task, error) {
	tmpl, err := e.templates.Resolve(ctx, req.Namespace, req.Name, req.Version)
	if err != nil {
		return nil, err
	}
	taskContext, err := e.checkContext(tmpl, req.Context)
	if err != nil {
		return nil, err
	}
	id, err := taskIdentity(tmpl, req, taskContext)
	if err != nil {
		return nil, err
	}
	taskUUID, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	err = dbtx.WithTx(ctx, e.pool, func(tx pgx.Tx) error {
		return e.insertTask(ctx, tx, taskUUID, tmpl, req, taskContext, id.hash)
	})
	if errors.Is(err, errTemplateChanged) {
		return nil, err
	}
	if dbtx.IsUniqueViolation(err, "tasks_identity_hash_key") {
		existing, lookupErr := e.queries.FindTaskByIdentity(ctx, e.pool, id.hash)
		if lookupErr != nil {
			return nil, fmt.Errorf("duplicate task identity, and looking up the existing task failed: %w", lookupErr)
		}
		return nil, &DuplicateTaskError{ExistingTaskUUID: existing, Strategy: template.IdentityStrategy(tmpl.IdentityStrategy), ByKey: id.byKey}
	}
	if err != nil {
		return nil, fmt.Errorf("creating task of %s: %w", templateKey(tmpl.NamespaceName, tmpl.Name, tmpl.Version), err)
	}
	return e.GetTask(ctx, taskUUID)
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

// insertTask writes the task, its steps and edges, enqueues the root steps
// and records the creation transitions.
func (e *Engine) insertTask(ctx context.Context, tx pgx.Tx, taskUUID uuid.UUID, tmpl dbsqlc.TaskerTemplate, req CreateTaskRequest, taskContext json.RawMessage, identityHash string) error {
	locked, err := e.queries.LockTemplateForTask(ctx, tx, tmpl.TemplateID)
	if err != nil {
		return fmt.Errorf("locking template: %w", err)
	}
	if locked.Fingerprint != tmpl.Fingerprint || locked.Retired {
		return errTemplateChanged
	}
	correlationID := req.CorrelationID
	if correlationID == uuid.Nil {
		correlationID = uuid.New()
	}
	var key *string
	if req.IdempotencyKey != "" {
		key = &req.IdempotencyKey
	}
	err = e.queries.InsertTask(ctx, tx, dbsqlc.InsertTaskParams{
		TaskUUID: taskUUID, TemplateID: tmpl.TemplateID, NamespaceName: tmpl.NamespaceName,
		Name: tmpl.Name, Version: tmpl.Version, Context: taskContext, IdentityHash: identityHash,
		IdempotencyKey: key, Priority: int32(req.Priority), CorrelationID: correlationID,
		Initiator: req.Initiator, SourceSystem: req.SourceSystem, Reason: req.Reason,
	})
	if err != nil {
		return err
	}
	steps, err := e.queries.InsertTaskSteps(ctx, tx, dbsqlc.InsertTaskStepsParams{TaskUUID: taskUUID, TemplateID: tmpl.TemplateID, Actor: e.cfg.ProcessID})
	if err != nil {
		return fmt.Errorf("creating steps: %w", err)
	}
	if len(steps) == 0 {
		return fmt.Errorf("template %s has no steps", templateKey(tmpl.NamespaceName, tmpl.Name, tmpl.Version))
	}
	if err := e.queries.InsertTaskEdges(ctx, tx, dbsqlc.InsertTaskEdgesParams{TaskUUID: taskUUID, TemplateID: tmpl.TemplateID}); err != nil {
		return fmt.Errorf("creating edges: %w", err)
	}
	task := taskRef{uuid: taskUUID, namespace: tmpl.NamespaceName, correlationID: correlationID}
	enqueued, err := e.enqueueReady(ctx, tx, task, "root step")
	if err != nil {
		return err
	}
	if enqueued == 0 {
		return errors.New("no root step to enqueue")
	}
	return e.recordCreation(ctx, tx, taskUUID, len(steps), enqueued)
}

// recordCreation records the states the new task passed through inside the
// creating transaction (InsertTask wrote it as steps_in_process).
func (e *Engine) recordCreation(ctx context.Context, tx pgx.Tx, taskUUID uuid.UUID, steps, roots int) error {
	return e.queries.RecordTaskTransitions(ctx, tx, dbsqlc.RecordTaskTransitionsParams{
		TaskUUID:   taskUUID,
		Actor:      e.cfg.ProcessID,
		FromStates: []string{"", string(TaskPending), string(TaskInitializing), string(TaskEnqueuingSteps)},
		ToStates:   []string{string(TaskPending), string(TaskInitializing), string(TaskEnqueuingSteps), string(TaskStepsInProcess)},
		Reasons: []string{
			"task created",
			fmt.Sprintf("%d steps created from the template", steps),
			fmt.Sprintf("enqueuing %d root steps", roots),
			"root steps enqueued",
		},
	})
}
