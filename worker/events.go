package worker

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/orchestration/dispatch"
)

// StepExecutionEvent asks the subscribers that run handlers to run a step.
type StepExecutionEvent struct {
	// EventID correlates the event with its StepExecutionCompletionEvent.
	EventID  uuid.UUID
	TaskUUID uuid.UUID
	StepUUID uuid.UUID
	Step     *TaskSequenceStep
	// Context ends when the step must stop: at its timeout, when its task is
	// cancelled, when the worker loses its claim, or at forced shutdown. A
	// runtime passes it to the handler.
	Context context.Context //nolint:containedctx // the step's lifetime travels with the event to whichever runtime runs it
}

// StepExecutionCompletionEvent reports the outcome of a StepExecutionEvent.
type StepExecutionCompletionEvent struct {
	// EventID is the EventID of the execution event it answers.
	EventID  uuid.UUID
	TaskUUID uuid.UUID
	StepUUID uuid.UUID
	Success  bool
	// Result is the step's JSON result when Success.
	Result json.RawMessage
	// Metadata is the handler's metadata (not stored).
	Metadata map[string]any
	// Error is set when the attempt failed.
	Error *dispatch.StepError
}
