package orchestration

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/dbtx"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

// Task is a task as callers see it.
type Task struct {
	UUID           uuid.UUID       `json:"task_uuid"`
	Namespace      string          `json:"namespace"`
	Name           string          `json:"name"`
	Version        string          `json:"version"`
	State          TaskState       `json:"status"`
	Context        json.RawMessage `json:"context"`
	Priority       int             `json:"priority"`
	CorrelationID  uuid.UUID       `json:"correlation_id"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Initiator      string          `json:"initiator,omitempty"`
	SourceSystem   string          `json:"source_system,omitempty"`
	Reason         string          `json:"reason,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	CompletedAt    *time.Time      `json:"completed_at,omitempty"`
	StepCount      int             `json:"step_count"`
	// Steps are in template order; GetTask fills them, ListTasks does not.
	Steps []Step `json:"steps,omitempty"`
}

// Step is a workflow step as callers see it.
type Step struct {
	UUID        uuid.UUID           `json:"step_uuid"`
	Name        string              `json:"name"`
	State       StepState           `json:"state"`
	Attempts    int                 `json:"attempts"`
	MaxAttempts int                 `json:"max_attempts"`
	Results     json.RawMessage     `json:"results,omitempty"`
	Error       *dispatch.StepError `json:"error,omitempty"`
	EnqueuedAt  *time.Time          `json:"enqueued_at,omitempty"`
	StartedAt   *time.Time          `json:"started_at,omitempty"`
	CompletedAt *time.Time          `json:"completed_at,omitempty"`
	NextRetryAt *time.Time          `json:"next_retry_at,omitempty"`
}

// CompletedSteps counts the steps that are complete or resolved.
func (t *Task) CompletedSteps() int {
	n := 0
	for _, s := range t.Steps {
		if s.State.Satisfied() {
			n++
		}
	}
	return n
}

// Step returns the named step, or nil.
func (t *Task) Step(name string) *Step {
	for i := range t.Steps {
		if t.Steps[i].Name == name {
			return &t.Steps[i]
		}
	}
	return nil
}

// GetTask returns a task with its steps.
func (e *Engine) GetTask(ctx context.Context, taskUUID uuid.UUID) (*Task, error) {
	row, err := e.queries.GetTask(ctx, e.pool, taskUUID)
	if err != nil {
		return nil, dbtx.Interpret(err, "task "+taskUUID.String())
	}
	steps, err := e.queries.ListTaskSteps(ctx, e.pool, taskUUID)
	if err != nil {
		return nil, dbtx.Interpret(err, "steps of task "+taskUUID.String())
	}
	task := taskFromRow(row)
	task.Steps = make([]Step, len(steps))
	for i, s := range steps {
		task.Steps[i] = stepFromRow(s)
	}
	return task, nil
}

func taskFromRow(row dbsqlc.TaskerTask) *Task {
	task := &Task{
		UUID: row.TaskUUID, Namespace: row.NamespaceName, Name: row.Name, Version: row.Version,
		State: TaskState(row.State), Context: row.Context, Priority: int(row.Priority),
		CorrelationID: row.CorrelationID, Initiator: row.Initiator, SourceSystem: row.SourceSystem,
		Reason: row.Reason, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
		CompletedAt: row.CompletedAt, StepCount: int(row.StepCount),
	}
	if row.IdempotencyKey != nil {
		task.IdempotencyKey = *row.IdempotencyKey
	}
	return task
}

func stepFromRow(row dbsqlc.TaskerWorkflowStep) Step {
	step := Step{
		UUID: row.StepUUID, Name: row.Name, State: StepState(row.State),
		Attempts: int(row.Attempts), MaxAttempts: int(row.MaxAttempts), Results: row.Results,
		EnqueuedAt: row.EnqueuedAt, StartedAt: row.StartedAt, CompletedAt: row.CompletedAt,
		NextRetryAt: row.NextRetryAt,
	}
	if len(row.Error) > 0 {
		stepErr := stepErrorOf(row)
		step.Error = &stepErr
	}
	return step
}
