package orchestration

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/taskerops/tasker/internal/dbsqlc"
)

// Paging bounds of ListTasks.
const (
	// DefaultPerPage is the page size when ListTasksOptions.PerPage is zero.
	DefaultPerPage = 25
	// MaxPerPage is the largest page size ListTasks accepts.
	MaxPerPage = 100
)

// TaskStates lists every task state, in lifecycle order.
func TaskStates() []TaskState {
	return []TaskState{
		TaskPending, TaskInitializing, TaskEnqueuingSteps, TaskStepsInProcess,
		TaskEvaluatingResults, TaskWaitingForDependencies, TaskWaitingForRetry,
		TaskBlockedByFailures, TaskComplete, TaskError, TaskCancelled, TaskResolvedManually,
	}
}

// ListTasksOptions filters and pages ListTasks. The zero value lists the
// first page of every task.
type ListTasksOptions struct {
	// Namespace keeps the tasks of one workflow namespace; empty keeps all.
	Namespace string
	// State keeps the tasks in one state (a TaskState value, the task's
	// JSON "status"); empty keeps all.
	State string
	// Page is the 1-based page number; zero means 1.
	Page int
	// PerPage is the page size, at most MaxPerPage; zero means
	// DefaultPerPage.
	PerPage int
}

// TaskPage is one page of tasks, newest first.
type TaskPage struct {
	// Tasks are the tasks of the page, without their steps; each one's
	// StepCount is its total number of steps.
	Tasks []Task
	// CompletedSteps[i] counts the steps of Tasks[i] that are complete or
	// resolved by hand.
	CompletedSteps []int
	// Total counts the tasks that match the filters, on every page.
	Total int
	// Page and PerPage are the paging actually applied.
	Page, PerPage int
}

// ListTasks returns one page of the tasks matching opts, newest first. An
// invalid option fails with *InvalidRequestError naming it ("namespace",
// "state", "page" or "per_page").
func (e *Engine) ListTasks(ctx context.Context, opts ListTasksOptions) (*TaskPage, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var namespace, state *string
	if opts.Namespace != "" {
		namespace = &opts.Namespace
	}
	if opts.State != "" {
		state = &opts.State
	}
	total, err := e.queries.CountTasks(ctx, e.pool, dbsqlc.CountTasksParams{NamespaceName: namespace, State: state})
	if err != nil {
		return nil, fmt.Errorf("counting tasks: %w", err)
	}
	rows, err := e.queries.ListTaskSummaries(ctx, e.pool, dbsqlc.ListTaskSummariesParams{
		NamespaceName: namespace, State: state,
		SkipRows: int32((opts.Page - 1) * opts.PerPage), MaxRows: int32(opts.PerPage),
	})
	if err != nil {
		return nil, fmt.Errorf("listing tasks: %w", err)
	}
	page := &TaskPage{
		Tasks: make([]Task, len(rows)), CompletedSteps: make([]int, len(rows)),
		Total: int(total), Page: opts.Page, PerPage: opts.PerPage,
	}
	for i, row := range rows {
		page.Tasks[i] = *taskFromRow(row.TaskerTask)
		page.CompletedSteps[i] = int(row.CompletedSteps)
	}
	return page, nil
}

// maxPage keeps the row offset of a page within PostgreSQL's int32 range
// (OFFSET is bound as an integer parameter).
const maxPage = 1_000_000

// withDefaults checks the options and fills in the paging defaults.
func (o ListTasksOptions) withDefaults() (ListTasksOptions, error) {
	if err := checkText("namespace", o.Namespace); err != nil {
		return o, err
	}
	if o.State != "" && !slices.Contains(TaskStates(), TaskState(o.State)) {
		return o, &InvalidRequestError{Field: "state", Message: fmt.Sprintf("%q is not a task state; valid states: %s", o.State, joinStates(TaskStates()))}
	}
	switch {
	case o.Page < 0 || o.Page > maxPage:
		return o, &InvalidRequestError{Field: "page", Message: fmt.Sprintf("must be between 1 and %d", maxPage)}
	case o.PerPage < 0 || o.PerPage > MaxPerPage:
		return o, &InvalidRequestError{Field: "per_page", Message: fmt.Sprintf("must be between 1 and %d", MaxPerPage)}
	}
	if o.Page == 0 {
		o.Page = 1
	}
	if o.PerPage == 0 {
		o.PerPage = DefaultPerPage
	}
	return o, nil
}

func joinStates(states []TaskState) string {
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
