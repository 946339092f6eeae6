package api

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration"
)

// CreateTaskRequest is the body of POST /v1/tasks.
type CreateTaskRequest = orchestration.CreateTaskRequest

// Execution statuses: a task's state summed up for people and dashboards.
const (
	// ExecutionProcessing: steps are queued, running or waiting for their
	// parents.
	ExecutionProcessing = "processing"
	// ExecutionWaitingForRetry: nothing runs; a failed step waits for its
	// next attempt.
	ExecutionWaitingForRetry = "waiting_for_retry"
	// ExecutionBlockedByFailures: a step failed for good; the task needs a
	// person (retry or resolve the step, or cancel the task).
	ExecutionBlockedByFailures = "blocked_by_failures"
	// ExecutionAllComplete: every step completed or was resolved by hand.
	ExecutionAllComplete = "all_complete"
	// ExecutionCancelled: the task was cancelled.
	ExecutionCancelled = "cancelled"
)

// Task is a task as the API returns it: the engine's task plus a summary
// of its progress.
type Task struct {
	orchestration.Task
	// execution_status is one of the Execution* values, derived from status.
	ExecutionStatus string `json:"execution_status"`
	// completion_percentage is completed_steps*100/total_steps, rounded down.
	CompletionPercentage int `json:"completion_percentage"`
	// completed_steps counts the steps complete or resolved by hand.
	CompletedSteps int `json:"completed_steps"`
	// total_steps counts all steps of the task.
	TotalSteps int `json:"total_steps"`
	// duration_ms is the time from creation to the end, once the task has
	// finished.
	DurationMs *int64 `json:"duration_ms,omitempty"`
}

// TaskList is the body of GET /v1/tasks: one page of tasks, newest first,
// without their steps.
type TaskList struct {
	// tasks are the page's tasks.
	Tasks []Task `json:"tasks"`
	// total counts the tasks matching the filters, on every page.
	Total int `json:"total"`
	// page and per_page are the paging applied.
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
}

// Template is a registered workflow template.
type Template struct {
	Namespace        string          `json:"namespace"`
	Name             string          `json:"name"`
	Version          string          `json:"version"`
	Description      string          `json:"description"`
	IdentityStrategy string          `json:"identity_strategy"`
	InputSchema      json.RawMessage `json:"input_schema,omitempty"`
	// definition is the template as registered (the TaskTemplate spec).
	Definition json.RawMessage `json:"definition"`
	Retired    bool            `json:"retired"`
	RetiredAt  *time.Time      `json:"retired_at,omitempty"`
	// owner is who registered it (e.g. the TaskTemplate resource).
	Owner     string    `json:"owner"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TemplateList is the body of GET /v1/templates.
type TemplateList struct {
	Templates []Template `json:"templates"`
}

// Status is the body of a successful probe.
type Status struct {
	Status string `json:"status"`
}

// FieldDetail is an error detail naming a request field.
type FieldDetail struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// DuplicateDetail is the detail of a DUPLICATE_TASK error.
type DuplicateDetail struct {
	ExistingTaskUUID uuid.UUID `json:"existing_task_uuid"`
}

// executionStatus sums a task state up.
func executionStatus(state orchestration.TaskState) string {
	switch state {
	case orchestration.TaskComplete, orchestration.TaskResolvedManually:
		return ExecutionAllComplete
	case orchestration.TaskCancelled:
		return ExecutionCancelled
	case orchestration.TaskBlockedByFailures, orchestration.TaskError:
		return ExecutionBlockedByFailures
	case orchestration.TaskWaitingForRetry:
		return ExecutionWaitingForRetry
	default:
		return ExecutionProcessing
	}
}

// newTask describes an engine task whose completed steps are known.
func newTask(t *orchestration.Task, completed int) Task {
	task := Task{
		Task:            *t,
		ExecutionStatus: executionStatus(t.State),
		CompletedSteps:  completed,
		TotalSteps:      t.StepCount,
	}
	if t.StepCount > 0 {
		task.CompletionPercentage = min(100, completed*100/t.StepCount)
	}
	if t.CompletedAt != nil {
		ms := t.CompletedAt.Sub(t.CreatedAt).Milliseconds()
		task.DurationMs = &ms
	}
	return task
}

// newTaskWithSteps describes an engine task that carries its steps.
func newTaskWithSteps(t *orchestration.Task) Task {
	return newTask(t, t.CompletedSteps())
}

// newTaskList describes a page of tasks.
func newTaskList(page *orchestration.TaskPage) TaskList {
	list := TaskList{Tasks: make([]Task, len(page.Tasks)), Total: page.Total, Page: page.Page, PerPage: page.PerPage}
	for i := range page.Tasks {
		list.Tasks[i] = newTask(&page.Tasks[i], page.CompletedSteps[i])
	}
	return list
}

// newTemplate describes a template row.
func newTemplate(row dbsqlc.TaskerTemplate) Template {
	return Template{
		Namespace: row.NamespaceName, Name: row.Name, Version: row.Version,
		Description: row.Description, IdentityStrategy: row.IdentityStrategy,
		InputSchema: row.InputSchema, Definition: row.Definition,
		Retired: row.Retired, RetiredAt: row.RetiredAt, Owner: row.Owner,
		CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	}
}
