package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/dbtx"
	"github.com/taskerops/tasker/internal/jsonb"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

// CancelTask cancels a task that has not finished: every open step becomes
// cancelled (so workers' claims and outcomes for them are refused), the
// task becomes cancelled, and a NOTIFY on dispatch.CancelChannel tells
// workers to cancel the contexts of its running handlers. A finished task
// fails with *StateConflictError.
func (e *Engine) CancelTask(ctx context.Context, taskUUID uuid.UUID, reason string) (*Task, error) {
	if reason == "" {
		reason = "cancelled on request"
	}
	if err := checkText("reason", reason); err != nil {
		return nil, err
	}
	err := dbtx.WithTx(ctx, e.pool, func(tx pgx.Tx) error {
		task, err := e.lockTask(ctx, tx, taskUUID)
		if err != nil {
			return err
		}
		state := TaskState(task.State)
		if state.Terminal() {
			return &StateConflictError{What: "task " + taskUUID.String(), State: task.State, Want: "a task that has not finished"}
		}
		if _, err := e.queries.CancelOpenSteps(ctx, tx, dbsqlc.CancelOpenStepsParams{TaskUUID: taskUUID, Actor: e.cfg.ProcessID, Reason: reason}); err != nil {
			return fmt.Errorf("cancelling steps: %w", err)
		}
		if err := e.transitionTask(ctx, tx, taskUUID, state, TaskCancelled, reason); err != nil {
			return err
		}
		return e.queries.NotifyTaskCancelled(ctx, tx, dbsqlc.NotifyTaskCancelledParams{Channel: dispatch.CancelChannel, TaskUUID: taskUUID.String()})
	})
	if err != nil {
		return nil, err
	}
	return e.GetTask(ctx, taskUUID)
}

// RetryStep gives a failed step of an unfinished task a fresh retry budget
// and enqueues it again (manual recovery). The step must be in error.
func (e *Engine) RetryStep(ctx context.Context, taskUUID uuid.UUID, stepName, reason string) (*Task, error) {
	if reason == "" {
		reason = "retried by hand"
	}
	if err := errors.Join(checkText("reason", reason), checkText("step", stepName)); err != nil {
		return nil, err
	}
	err := e.withFailedStep(ctx, taskUUID, stepName, func(tx pgx.Tx, task dbsqlc.TaskerTask, step dbsqlc.TaskerWorkflowStep) error {
		if err := e.queries.ResetStepAttempts(ctx, tx, step.StepUUID); err != nil {
			return err
		}
		if err := e.transitionStep(ctx, tx, step.StepUUID, StepError, StepEnqueued, reason, 0); err != nil {
			return err
		}
		if err := e.sendSteps(ctx, tx, refOf(task), []stepRef{{uuid: step.StepUUID, name: step.Name}}); err != nil {
			return err
		}
		return e.evaluateTask(ctx, tx, task, "step "+step.Name+" retried by hand")
	})
	if err != nil {
		return nil, err
	}
	return e.GetTask(ctx, taskUUID)
}

// ResolveStep marks a failed step of an unfinished task as resolved by
// hand, optionally with the result its dependents should see; dependents
// then run as if it had completed.
func (e *Engine) ResolveStep(ctx context.Context, taskUUID uuid.UUID, stepName string, result json.RawMessage, reason string) (*Task, error) {
	if reason == "" {
		reason = "resolved by hand"
	}
	if err := errors.Join(checkText("reason", reason), checkText("step", stepName)); err != nil {
		return nil, err
	}
	if len(result) > 0 {
		if err := jsonb.Check(result); err != nil {
			return nil, &InvalidRequestError{Field: "result", Message: err.Error()}
		}
	}
	err := e.withFailedStep(ctx, taskUUID, stepName, func(tx pgx.Tx, task dbsqlc.TaskerTask, step dbsqlc.TaskerWorkflowStep) error {
		if len(result) > 0 {
			if err := e.queries.SetStepResultsResolved(ctx, tx, dbsqlc.SetStepResultsResolvedParams{StepUUID: step.StepUUID, Results: result}); err != nil {
				return err
			}
		}
		if err := e.transitionStep(ctx, tx, step.StepUUID, StepError, StepResolvedManually, reason, 0); err != nil {
			return err
		}
		return e.afterStepSatisfied(ctx, tx, task, step, "step "+step.Name+" resolved by hand")
	})
	if err != nil {
		return nil, err
	}
	return e.GetTask(ctx, taskUUID)
}

// withFailedStep runs fn under the task's lock after checking that the
// task has not finished and that the named step is in error.
func (e *Engine) withFailedStep(ctx context.Context, taskUUID uuid.UUID, stepName string, fn func(pgx.Tx, dbsqlc.TaskerTask, dbsqlc.TaskerWorkflowStep) error) error {
	return dbtx.WithTx(ctx, e.pool, func(tx pgx.Tx) error {
		task, err := e.lockTask(ctx, tx, taskUUID)
		if err != nil {
			return err
		}
		if TaskState(task.State).Terminal() {
			return &StateConflictError{What: "task " + taskUUID.String(), State: task.State, Want: "a task that has not finished"}
		}
		step, err := e.queries.GetStepByName(ctx, tx, dbsqlc.GetStepByNameParams{TaskUUID: taskUUID, Name: stepName})
		if err != nil {
			return dbtx.Interpret(err, fmt.Sprintf("step %q of task %s", stepName, taskUUID))
		}
		if StepState(step.State) != StepError {
			return &StateConflictError{What: "step " + stepName, State: step.State, Want: "a step in error"}
		}
		return fn(tx, task, step)
	})
}

func (e *Engine) lockTask(ctx context.Context, tx pgx.Tx, taskUUID uuid.UUID) (dbsqlc.TaskerTask, error) {
	task, err := e.queries.LockTask(ctx, tx, taskUUID)
	if errors.Is(err, pgx.ErrNoRows) {
		return task, fmt.Errorf("task %s: %w", taskUUID, ErrNotFound)
	}
	return task, err
}
