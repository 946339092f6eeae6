package orchestration

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

// taskRef is what enqueueing needs to know about a task.
type taskRef struct {
	uuid          uuid.UUID
	namespace     string
	correlationID uuid.UUID
}

func refOf(task dbsqlc.TaskerTask) taskRef {
	return taskRef{uuid: task.TaskUUID, namespace: task.NamespaceName, correlationID: task.CorrelationID}
}

// stepRef names one step to send.
type stepRef struct {
	uuid uuid.UUID
	name string
}

// sendSteps puts one message per step on the task's namespace queue.
func (e *Engine) sendSteps(ctx context.Context, tx pgx.Tx, task taskRef, steps []stepRef) error {
	if len(steps) == 0 {
		return nil
	}
	bodies := make([]json.RawMessage, len(steps))
	for i, s := range steps {
		body, err := stepMessage(task, s)
		if err != nil {
			return err
		}
		bodies[i] = body
	}
	queueName := dispatch.StepQueue(task.namespace)
	if _, err := e.queue.SendBatch(ctx, tx, queueName, bodies, 0); err != nil {
		return fmt.Errorf("sending %d steps to %s: %w", len(steps), queueName, err)
	}
	return nil
}

// stepMessage is the body of the message that sends one step of task to
// the workers (dispatch.StepMessage).
func stepMessage(task taskRef, s stepRef) (json.RawMessage, error) {
	return json.Marshal(dispatch.StepMessage{
		TaskUUID: task.uuid, StepUUID: s.uuid, StepName: s.name,
		Namespace: task.namespace, CorrelationID: task.correlationID,
	})
}

// evaluateTask recomputes the task's state from its steps' states and
// records the transition when it changed. A task in a terminal state is
// left alone.
func (e *Engine) evaluateTask(ctx context.Context, tx pgx.Tx, task dbsqlc.TaskerTask, reason string) error {
	current := TaskState(task.State)
	if current.Terminal() {
		return nil
	}
	rows, err := e.queries.CountTaskStepsByState(ctx, tx, task.TaskUUID)
	if err != nil {
		return fmt.Errorf("counting step states: %w", err)
	}
	counts := make(map[StepState]int, len(rows))
	for _, r := range rows {
		counts[StepState(r.State)] = int(r.Steps)
	}
	next := nextTaskState(counts)
	if next == current {
		return nil
	}
	return e.transitionTask(ctx, tx, task.TaskUUID, current, next, reason)
}

// transitionTask moves a task between two states and records why.
func (e *Engine) transitionTask(ctx context.Context, tx pgx.Tx, taskUUID uuid.UUID, from, to TaskState, reason string) error {
	n, err := e.queries.TransitionTask(ctx, tx, dbsqlc.TransitionTaskParams{
		TaskUUID: taskUUID, FromState: string(from), ToState: string(to),
		Terminal: to.Terminal(), Actor: e.cfg.ProcessID, Reason: reason,
	})
	if err != nil {
		return fmt.Errorf("moving task %s from %s to %s: %w", taskUUID, from, to, err)
	}
	if n == 0 {
		return fmt.Errorf("moving task %s from %s to %s: task is no longer %s", taskUUID, from, to, from)
	}
	return nil
}

// transitionStep moves a step between two states and records why.
// retryDelayMs is used only for waiting_for_retry. The caller holds the task
// lock and has checked the step's state, so a step that is not in from is
// an error.
func (e *Engine) transitionStep(ctx context.Context, tx pgx.Tx, stepUUID uuid.UUID, from, to StepState, reason string, retryDelayMs int64) error {
	n, err := e.queries.TransitionStep(ctx, tx, dbsqlc.TransitionStepParams{
		StepUUID: stepUUID, FromState: string(from), ToState: string(to),
		RetryDelayMs: retryDelayMs, Actor: e.cfg.ProcessID, Reason: reason,
	})
	if err != nil {
		return fmt.Errorf("moving step %s from %s to %s: %w", stepUUID, from, to, err)
	}
	if n == 0 {
		return fmt.Errorf("moving step %s from %s to %s: step is no longer %s", stepUUID, from, to, from)
	}
	return nil
}
