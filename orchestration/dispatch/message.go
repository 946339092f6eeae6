// Package dispatch is the contract between the orchestrator and the
// workers: the queue messages they exchange, the error a step reports, and
// the worker's side of a step (claim it, load what it needs, record its
// outcome), each a few SQL statements in one transaction.
//
// The messages are wake-ups, not the state: the state of every step lives
// in tasker.workflow_steps, and every change is conditional on the step
// still being where the sender left it. A duplicated, replayed or stale
// message is therefore harmless; it is deleted when it no longer applies.
package dispatch

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Queue names shared by every component.
const (
	// ResultsQueue carries ResultMessages from workers to orchestrators.
	ResultsQueue = "orchestration_step_results"
	// TaskRequestsQueue is reserved for task requests sent over PGMQ.
	TaskRequestsQueue = "orchestration_task_requests"
	// CancelChannel is the NOTIFY channel on which the orchestrator announces
	// a cancelled task (payload: the task UUID), so that workers can cancel
	// the contexts of its running handlers.
	CancelChannel = "tasker_task_cancelled"
)

// StepQueue is the queue that carries the steps of a workflow namespace.
func StepQueue(namespace string) string { return namespace + "_queue" }

// StepMessage is what the orchestrator puts on a namespace queue for each
// step it enqueues.
type StepMessage struct {
	TaskUUID      uuid.UUID `json:"task_uuid"`
	StepUUID      uuid.UUID `json:"step_uuid"`
	StepName      string    `json:"step_name"`
	Namespace     string    `json:"namespace"`
	CorrelationID uuid.UUID `json:"correlation_id"`
}

// ResultMessage is what a worker puts on ResultsQueue after it stored the
// outcome of one attempt of a step.
type ResultMessage struct {
	TaskUUID uuid.UUID `json:"task_uuid"`
	StepUUID uuid.UUID `json:"step_uuid"`
	// Attempt is the attempt whose outcome was stored; a message for an
	// older attempt is stale.
	Attempt int  `json:"attempt"`
	Success bool `json:"success"`
}

// ErrMalformed marks a message that cannot be used; such messages are
// archived with the reason.
var ErrMalformed = errors.New("malformed message")

// DecodeStepMessage parses and checks a StepMessage.
func DecodeStepMessage(body []byte) (StepMessage, error) {
	var msg StepMessage
	if err := json.Unmarshal(body, &msg); err != nil {
		return msg, fmt.Errorf("%w: step message is not valid JSON of the expected shape: %w", ErrMalformed, err)
	}
	if msg.TaskUUID == uuid.Nil || msg.StepUUID == uuid.Nil {
		return msg, fmt.Errorf("%w: step message needs task_uuid and step_uuid", ErrMalformed)
	}
	return msg, nil
}

// DecodeResultMessage parses and checks a ResultMessage.
func DecodeResultMessage(body []byte) (ResultMessage, error) {
	var msg ResultMessage
	if err := json.Unmarshal(body, &msg); err != nil {
		return msg, fmt.Errorf("%w: result message is not valid JSON of the expected shape: %w", ErrMalformed, err)
	}
	if msg.TaskUUID == uuid.Nil || msg.StepUUID == uuid.Nil {
		return msg, fmt.Errorf("%w: result message needs task_uuid and step_uuid", ErrMalformed)
	}
	if msg.Attempt < 1 {
		return msg, fmt.Errorf("%w: result message needs attempt >= 1, got %d", ErrMalformed, msg.Attempt)
	}
	return msg, nil
}

// StepError is the error a step attempt reports, stored as JSON in
// tasker.workflow_steps.error.
type StepError struct {
	// Code is a stable machine-readable code, e.g. "VALIDATION_ERROR".
	Code string `json:"code"`
	// Message is for people.
	Message string `json:"message"`
	// Retryable says whether another attempt may succeed. Permanent errors
	// are never retried, whatever the step's policy.
	Retryable bool `json:"retryable"`
	// RetryAfterMs, when positive, is the delay the handler asks for before
	// the next attempt (Retry-After style); it replaces the policy's backoff.
	RetryAfterMs int64 `json:"retry_after_ms,omitempty"`
	// Context holds structured details.
	Context json.RawMessage `json:"context,omitempty"`
}

// Error implements error.
func (e *StepError) Error() string {
	kind := "permanent"
	if e.Retryable {
		kind = "retryable"
	}
	return fmt.Sprintf("%s (%s): %s", e.Code, kind, e.Message)
}

// Outcome is the result of one attempt: a result on success, or an error.
type Outcome struct {
	// Result is the step's JSON result; stored when Error is nil.
	Result json.RawMessage
	// Error, when set, makes the attempt a failure.
	Error *StepError
}

// Succeeded reports whether the attempt succeeded.
func (o Outcome) Succeeded() bool { return o.Error == nil }
