package api

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration"
)

func TestCancelTask(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	task := b.createTask(t, `{"even_number": 2}`)
	path := "/v1/tasks/" + task.UUID.String()

	cancelled := decodeAs[Task](t, b.request(t, http.MethodDelete, path, `{"reason": "not needed"}`), http.StatusOK)
	require.Equal(t, orchestration.TaskCancelled, cancelled.State)
	require.Equal(t, ExecutionCancelled, cancelled.ExecutionStatus)
	require.NotNil(t, cancelled.DurationMs, "a finished task has a duration")
	require.GreaterOrEqual(t, *cancelled.DurationMs, int64(0))
	for _, step := range cancelled.Steps {
		require.Equal(t, orchestration.StepCancelled, step.State)
	}

	e := requireError(t, b.request(t, http.MethodDelete, path, ""), http.StatusConflict, CodeInvalidState)
	require.Contains(t, e.Message, "cancelled")
	requireError(t, b.request(t, http.MethodDelete, "/v1/tasks/"+uuid.NewString(), ""), http.StatusNotFound, CodeTaskNotFound)
	requireError(t, b.request(t, http.MethodDelete, "/v1/tasks/42", ""), http.StatusBadRequest, CodeInvalidRequest)
	requireError(t, b.request(t, http.MethodDelete, path, `{"reason": 7}`), http.StatusBadRequest, CodeInvalidRequest)
}

func TestCancelTaskWithoutBody(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	task := b.createTask(t, `{"even_number": 2}`)
	cancelled := decodeAs[Task](t, b.request(t, http.MethodDelete, "/v1/tasks/"+task.UUID.String(), ""), http.StatusOK)
	require.Equal(t, orchestration.TaskCancelled, cancelled.State)
}

func TestRetryStep(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	task := b.createTask(t, `{"even_number": 2}`)
	path := "/v1/tasks/" + task.UUID.String() + "/steps/first/retry"

	e := requireError(t, b.request(t, http.MethodPost, path, ""), http.StatusConflict, CodeInvalidState)
	require.Contains(t, e.Message, "step first is enqueued")

	b.runStep(t, permanentFailure())
	blocked := decodeAs[Task](t, b.request(t, http.MethodGet, "/v1/tasks/"+task.UUID.String(), ""), http.StatusOK)
	require.Equal(t, ExecutionBlockedByFailures, blocked.ExecutionStatus)
	require.Equal(t, "BOOM", blocked.Step("first").Error.Code)
	require.False(t, blocked.Step("first").Error.Retryable)

	retried := decodeAs[Task](t, b.request(t, http.MethodPost, path, `{"reason": "fixed the cause"}`), http.StatusOK)
	require.Equal(t, orchestration.StepEnqueued, retried.Step("first").State)
	require.Equal(t, ExecutionProcessing, retried.ExecutionStatus)

	requireError(t, b.request(t, http.MethodPost, "/v1/tasks/"+task.UUID.String()+"/steps/nope/retry", ""), http.StatusNotFound, CodeStepNotFound)
	requireError(t, b.request(t, http.MethodPost, "/v1/tasks/"+uuid.NewString()+"/steps/first/retry", ""), http.StatusNotFound, CodeTaskNotFound)
	requireError(t, b.request(t, http.MethodPost, path, `{"reason": "x", "force": true}`), http.StatusBadRequest, CodeInvalidRequest)
	e = requireError(t, b.request(t, http.MethodPost, "/v1/tasks/"+task.UUID.String()+"/steps/a%00b/retry", `{"reason": "\u0000"}`), http.StatusBadRequest, CodeInvalidRequest)
	require.Len(t, e.Details, 2, "both bad fields are named")
}

func TestResolveStep(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	task := b.createTask(t, `{"even_number": 2}`)
	path := "/v1/tasks/" + task.UUID.String() + "/steps/first/resolve"
	b.runStep(t, permanentFailure())

	resolved := decodeAs[Task](t, b.request(t, http.MethodPost, path, `{"result": {"value": 16}, "reason": "done by hand"}`), http.StatusOK)
	require.Equal(t, orchestration.StepResolvedManually, resolved.Step("first").State)
	require.JSONEq(t, `{"value": 16}`, string(resolved.Step("first").Results))
	require.Equal(t, orchestration.StepEnqueued, resolved.Step("second").State, "the dependent runs")
	require.Equal(t, 1, resolved.CompletedSteps, "resolved counts as completed")
	require.Equal(t, 50, resolved.CompletionPercentage)

	e := requireError(t, b.request(t, http.MethodPost, path, ""), http.StatusConflict, CodeInvalidState)
	require.Contains(t, e.Message, "resolved_manually")
	requireError(t, b.request(t, http.MethodPost, "/v1/tasks/"+task.UUID.String()+"/steps/nope/resolve", ""), http.StatusNotFound, CodeStepNotFound)
	requireError(t, b.request(t, http.MethodPost, "/v1/tasks/"+uuid.NewString()+"/steps/first/resolve", ""), http.StatusNotFound, CodeTaskNotFound)

	b.runStep(t, success(`{"value": 256}`))
	done := decodeAs[Task](t, b.request(t, http.MethodGet, "/v1/tasks/"+task.UUID.String(), ""), http.StatusOK)
	require.Equal(t, orchestration.TaskComplete, done.State)
	require.Equal(t, ExecutionAllComplete, done.ExecutionStatus)
	require.Equal(t, 100, done.CompletionPercentage)
	require.NotNil(t, done.DurationMs)
	requireError(t, b.request(t, http.MethodPost, path, ""), http.StatusConflict, CodeInvalidState)
}
