package orchestration

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

func TestNextTaskState(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		steps map[StepState]int
		want  TaskState
	}{
		{"AllComplete", map[StepState]int{StepComplete: 4}, TaskComplete},
		{"CompleteAndResolvedManually", map[StepState]int{StepComplete: 3, StepResolvedManually: 1}, TaskComplete},
		{"AllResolvedManually", map[StepState]int{StepResolvedManually: 2}, TaskComplete},
		{"ZeroCountsIgnored", map[StepState]int{StepComplete: 2, StepError: 0, StepPending: 0}, TaskComplete},
		{"OneEnqueued", map[StepState]int{StepComplete: 1, StepEnqueued: 1, StepPending: 2}, TaskStepsInProcess},
		{"OneInProgress", map[StepState]int{StepInProgress: 1, StepPending: 3}, TaskStepsInProcess},
		{"OutcomeAwaitingOrchestration", map[StepState]int{StepComplete: 3, StepEnqueuedForOrchestration: 1}, TaskStepsInProcess},
		{"ErrorOutcomeAwaitingOrchestration", map[StepState]int{StepComplete: 3, StepEnqueuedAsErrorForOrchestration: 1}, TaskStepsInProcess},
		{"RetryWaitingOnly", map[StepState]int{StepComplete: 1, StepWaitingForRetry: 1, StepPending: 2}, TaskWaitingForRetry},
		{"RetryWaitingBeatsError", map[StepState]int{StepWaitingForRetry: 1, StepError: 1, StepPending: 2}, TaskWaitingForRetry},
		{"ErrorWithNothingInFlight", map[StepState]int{StepComplete: 1, StepError: 1, StepPending: 2}, TaskBlockedByFailures},
		{"ErrorWithSomethingInFlight", map[StepState]int{StepError: 1, StepInProgress: 1, StepPending: 2}, TaskStepsInProcess},
		{"InFlightBeatsRetryWaiting", map[StepState]int{StepWaitingForRetry: 1, StepEnqueued: 1}, TaskStepsInProcess},
		{"PendingBehindCancelledParent", map[StepState]int{StepComplete: 1, StepCancelled: 1, StepPending: 2}, TaskWaitingForDependencies},
		// No steps at all never counts as complete (a task always has at
		// least one step; the function must not finalize an empty one).
		{"Empty", map[StepState]int{}, TaskWaitingForDependencies},
		{"Nil", nil, TaskWaitingForDependencies},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, nextTaskState(tc.steps))
		})
	}
}

// stStep is a failed step's row with the given policy and attempts made.
func stStep(attempts, maxAttempts int32, retryable bool, backoff string, baseMs, maxMs, jitter int32) dbsqlc.TaskerWorkflowStep {
	return dbsqlc.TaskerWorkflowStep{
		Attempts: attempts, MaxAttempts: maxAttempts, Retryable: retryable,
		Backoff: backoff, BackoffBaseMs: baseMs, MaxBackoffMs: maxMs, JitterPercent: jitter,
	}
}

func TestDecideFailure(t *testing.T) {
	t.Parallel()
	retryable := func(code string) dispatch.StepError { return dispatch.StepError{Code: code, Retryable: true} }
	half := func() float64 { return 0.5 } // jitter midpoint: no change
	cases := []struct {
		name       string
		step       dbsqlc.TaskerWorkflowStep
		err        dispatch.StepError
		rnd        func() float64
		wantRetry  bool
		wantDelay  time.Duration
		wantReason string
	}{
		{
			name:       "PermanentErrorFailsOnFirstAttempt",
			step:       stStep(1, 5, true, "exponential", 1000, 30000, 0),
			err:        dispatch.StepError{Code: "VALIDATION_ERROR"},
			wantReason: "permanent error VALIDATION_ERROR on attempt 1",
		},
		{
			name:       "PermanentErrorIgnoresRequestedDelay",
			step:       stStep(1, 5, true, "exponential", 1000, 30000, 0),
			err:        dispatch.StepError{Code: "GONE", RetryAfterMs: 5000},
			wantReason: "permanent error GONE",
		},
		{
			name:       "NonRetryableStepFails",
			step:       stStep(1, 5, false, "exponential", 1000, 30000, 0),
			err:        retryable("TIMEOUT"),
			wantReason: "the step is not retryable",
		},
		{
			name:       "ExhaustedAttemptsFail",
			step:       stStep(3, 3, true, "exponential", 1000, 30000, 0),
			err:        retryable("TIMEOUT"),
			wantReason: "retries exhausted after 3 of 3 attempts",
		},
		{
			name:       "MaxAttemptsOneNeverRetries",
			step:       stStep(1, 1, true, "constant", 1000, 30000, 0),
			err:        retryable("TIMEOUT"),
			wantReason: "retries exhausted after 1 of 1 attempts",
		},
		{
			name: "ExponentialFirstRetry", step: stStep(1, 5, true, "exponential", 1000, 30000, 0), err: retryable("E"),
			wantRetry: true, wantDelay: time.Second, wantReason: "exponential backoff",
		},
		{
			name: "ExponentialThirdRetry", step: stStep(3, 5, true, "exponential", 1000, 30000, 0), err: retryable("E"),
			wantRetry: true, wantDelay: 4 * time.Second, wantReason: "retry in 4s",
		},
		{
			name: "ExponentialCappedAtMaxBackoff", step: stStep(9, 10, true, "exponential", 1000, 30000, 0), err: retryable("E"),
			wantRetry: true, wantDelay: 30 * time.Second,
		},
		{
			name: "LinearThirdRetry", step: stStep(3, 5, true, "linear", 200, 30000, 0), err: retryable("E"),
			wantRetry: true, wantDelay: 600 * time.Millisecond, wantReason: "linear backoff",
		},
		{
			name: "ConstantThirdRetry", step: stStep(3, 5, true, "constant", 750, 30000, 0), err: retryable("E"),
			wantRetry: true, wantDelay: 750 * time.Millisecond, wantReason: "constant backoff",
		},
		{
			name: "JitterMidpointLeavesDelay", step: stStep(2, 5, true, "exponential", 1000, 30000, 10), err: retryable("E"),
			rnd: half, wantRetry: true, wantDelay: 2 * time.Second,
		},
		{
			name: "JitterLowestDraw", step: stStep(2, 5, true, "exponential", 1000, 30000, 10), err: retryable("E"),
			rnd: func() float64 { return 0 }, wantRetry: true, wantDelay: 1800 * time.Millisecond,
		},
		{
			name:      "HandlerDelayOverridesBackoff",
			step:      stStep(1, 5, true, "exponential", 1000, 30000, 0),
			err:       dispatch.StepError{Code: "RATE_LIMITED", Retryable: true, RetryAfterMs: 12_345},
			wantRetry: true, wantDelay: 12345 * time.Millisecond, wantReason: "delay requested by the handler",
		},
		{
			name:      "HandlerDelayMayExceedMaxBackoff",
			step:      stStep(1, 5, true, "exponential", 1000, 30000, 0),
			err:       dispatch.StepError{Code: "RATE_LIMITED", Retryable: true, RetryAfterMs: 3_600_000},
			wantRetry: true, wantDelay: time.Hour,
		},
		{
			name:      "HandlerDelayCappedAt24h",
			step:      stStep(1, 5, true, "exponential", 1000, 30000, 0),
			err:       dispatch.StepError{Code: "RATE_LIMITED", Retryable: true, RetryAfterMs: 48 * 3_600_000},
			wantRetry: true, wantDelay: 24 * time.Hour,
		},
		{
			// 10^13 ms (~317 years) times 10^6 ns/ms overflows int64.
			name:      "HugeHandlerDelayCappedAt24h",
			step:      stStep(1, 5, true, "exponential", 1000, 30000, 0),
			err:       dispatch.StepError{Code: "RATE_LIMITED", Retryable: true, RetryAfterMs: 10_000_000_000_000},
			wantRetry: true, wantDelay: 24 * time.Hour,
		},
		{
			name:      "MaxInt64HandlerDelayCappedAt24h",
			step:      stStep(1, 5, true, "exponential", 1000, 30000, 0),
			err:       dispatch.StepError{Code: "RATE_LIMITED", Retryable: true, RetryAfterMs: math.MaxInt64},
			wantRetry: true, wantDelay: 24 * time.Hour,
		},
		{
			name:      "NegativeHandlerDelayFallsBackToBackoff",
			step:      stStep(2, 5, true, "constant", 500, 30000, 0),
			err:       dispatch.StepError{Code: "E", Retryable: true, RetryAfterMs: -1},
			wantRetry: true, wantDelay: 500 * time.Millisecond, wantReason: "constant backoff",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rnd := tc.rnd
			if rnd == nil {
				rnd = half
			}
			got := decideFailure(tc.step, tc.err, rnd)
			require.Equal(t, tc.wantRetry, got.retry, got.reason)
			require.Equal(t, tc.wantDelay, got.delay, got.reason)
			require.Contains(t, got.reason, tc.wantReason)
			require.Contains(t, got.reason, tc.err.Code)
		})
	}
}

func TestStepErrorOf(t *testing.T) {
	t.Parallel()
	unknown := dispatch.StepError{Code: "UNKNOWN_ERROR", Message: "the worker stored no readable error for this failure"}
	cases := []struct {
		name   string
		stored string
		want   dispatch.StepError
	}{
		{"Missing", "", unknown},
		{"Garbage", "not json {", unknown},
		{"NotAnObject", `[1, 2]`, unknown},
		{"WithoutCode", `{"message": "boom", "retryable": true}`, unknown},
		{"WrongFieldType", `{"code": 7, "retryable": true}`, unknown},
		{
			"Readable", `{"code": "TIMEOUT", "message": "slow", "retryable": true, "retry_after_ms": 250}`,
			dispatch.StepError{Code: "TIMEOUT", Message: "slow", Retryable: true, RetryAfterMs: 250},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var raw json.RawMessage
			if tc.stored != "" {
				raw = json.RawMessage(tc.stored)
			}
			step := stStep(1, 3, true, "exponential", 1000, 30000, 0)
			step.Error = raw
			got := stepErrorOf(step)
			require.Equal(t, tc.want, got)
			if got.Code == "UNKNOWN_ERROR" {
				require.False(t, got.Retryable, "an unreadable error is permanent")
				decision := decideFailure(step, got, func() float64 { return 0.5 })
				require.False(t, decision.retry, "and is never retried")
			}
		})
	}
}
