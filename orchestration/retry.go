package orchestration

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/template"
)

// maxRequestedDelay caps the delay a handler may ask for.
const maxRequestedDelay = 24 * time.Hour

// failureDecision is what happens to a step whose attempt failed.
type failureDecision struct {
	retry  bool
	delay  time.Duration
	reason string
}

// decideFailure applies the step's retry policy to a failed attempt: a
// permanent error or a non-retryable step fails now; a retryable error is
// retried while attempts remain, after the delay the handler asked for or
// else the policy's backoff.
func decideFailure(step dbsqlc.TaskerWorkflowStep, stepErr dispatch.StepError, rnd func() float64) failureDecision {
	attempts := int(step.Attempts)
	switch {
	case !stepErr.Retryable:
		return failureDecision{reason: fmt.Sprintf("permanent error %s on attempt %d", stepErr.Code, attempts)}
	case !step.Retryable:
		return failureDecision{reason: fmt.Sprintf("error %s on attempt %d; the step is not retryable", stepErr.Code, attempts)}
	case attempts >= int(step.MaxAttempts):
		return failureDecision{reason: fmt.Sprintf("error %s; retries exhausted after %d of %d attempts", stepErr.Code, attempts, step.MaxAttempts)}
	}
	delay := policyOf(step).Delay(attempts, rnd)
	source := step.Backoff + " backoff"
	if stepErr.RetryAfterMs > 0 {
		// Cap in milliseconds first: a huge request would overflow a Duration.
		delay = time.Duration(min(stepErr.RetryAfterMs, maxRequestedDelay.Milliseconds())) * time.Millisecond
		source = "delay requested by the handler"
	}
	return failureDecision{
		retry:  true,
		delay:  delay,
		reason: fmt.Sprintf("retryable error %s on attempt %d of %d; retry in %s (%s)", stepErr.Code, attempts, step.MaxAttempts, delay, source),
	}
}

// policyOf rebuilds the retry policy snapshotted into a step.
func policyOf(step dbsqlc.TaskerWorkflowStep) template.RetryPolicy {
	retryable := step.Retryable
	jitter := int(step.JitterPercent)
	return template.RetryPolicy{
		Retryable:     &retryable,
		MaxAttempts:   int(step.MaxAttempts),
		Backoff:       template.BackoffKind(step.Backoff),
		BackoffBaseMs: int(step.BackoffBaseMs),
		MaxBackoffMs:  int(step.MaxBackoffMs),
		JitterPercent: &jitter,
	}
}

// stepErrorOf decodes the error a worker stored on a step. A missing or
// unreadable error counts as permanent, so that it is never retried blindly.
func stepErrorOf(step dbsqlc.TaskerWorkflowStep) dispatch.StepError {
	var stepErr dispatch.StepError
	if len(step.Error) == 0 || json.Unmarshal(step.Error, &stepErr) != nil || stepErr.Code == "" {
		return dispatch.StepError{Code: "UNKNOWN_ERROR", Message: "the worker stored no readable error for this failure"}
	}
	return stepErr
}
