package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration"
)

func TestCreateTask(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})

	correlation := uuid.New()
	a := b.request(t, http.MethodPost, "/v1/tasks", fmt.Sprintf(
		`{"namespace": "api_test", "name": "numbers", "context": {"even_number": 4},
		  "initiator": "alice", "source_system": "tests", "reason": "because", "priority": 3,
		  "idempotency_key": "k-1", "correlation_id": %q}`, correlation))
	task := decodeAs[Task](t, a, http.StatusCreated)

	require.Equal(t, testNamespace, task.Namespace)
	require.Equal(t, "numbers", task.Name)
	require.Equal(t, "1.0.0", task.Version)
	require.Equal(t, orchestration.TaskStepsInProcess, task.State)
	require.Equal(t, ExecutionProcessing, task.ExecutionStatus)
	require.JSONEq(t, `{"even_number": 4}`, string(task.Context))
	require.Equal(t, correlation, task.CorrelationID)
	require.Equal(t, "alice", task.Initiator)
	require.Equal(t, 3, task.Priority)
	require.Equal(t, "k-1", task.IdempotencyKey)
	require.Equal(t, 2, task.TotalSteps)
	require.Zero(t, task.CompletedSteps)
	require.Zero(t, task.CompletionPercentage)
	require.Nil(t, task.DurationMs, "no duration before the end")
	require.Len(t, task.Steps, 2)
	require.Equal(t, orchestration.StepEnqueued, task.Step("first").State)
	require.Equal(t, orchestration.StepPending, task.Step("second").State)
	require.Contains(t, string(a.body), `"execution_status":"processing"`)
	require.Contains(t, string(a.body), `"completion_percentage":0`)
}

func TestCreateTaskErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxBodyBytes: 4096})
	existing := b.createTask(t, `{"even_number": 2}`)

	t.Run("OddNumberIsAnInvalidContext", func(t *testing.T) {
		a := b.request(t, http.MethodPost, "/v1/tasks", `{"namespace": "api_test", "name": "numbers", "context": {"even_number": 7}}`)
		e := requireError(t, a, http.StatusBadRequest, CodeInvalidContext)
		require.Equal(t, []map[string]any{{"path": "$.even_number", "message": "must be multiple of 2"}}, e.Details)
		require.Contains(t, e.Message, "api_test/numbers@1.0.0")
	})
	t.Run("MissingContextIsAnInvalidContext", func(t *testing.T) {
		a := b.request(t, http.MethodPost, "/v1/tasks", `{"namespace": "api_test", "name": "numbers", "context": null}`)
		e := requireError(t, a, http.StatusBadRequest, CodeInvalidContext)
		require.Equal(t, "$", e.Details[0]["path"])
	})
	t.Run("MissingNamespace", func(t *testing.T) {
		a := b.request(t, http.MethodPost, "/v1/tasks", `{"name": "numbers"}`)
		e := requireError(t, a, http.StatusBadRequest, CodeInvalidRequest)
		require.Equal(t, []map[string]any{{"field": "namespace", "message": "is required"}}, e.Details)
	})
	t.Run("UnknownTemplate", func(t *testing.T) {
		a := b.request(t, http.MethodPost, "/v1/tasks", `{"namespace": "api_test", "name": "nope"}`)
		e := requireError(t, a, http.StatusNotFound, CodeTemplateNotFound)
		require.Contains(t, e.Message, "api_test/nope")
	})
	t.Run("RetiredTemplate", func(t *testing.T) {
		a := b.request(t, http.MethodPost, "/v1/tasks", `{"namespace": "api_test", "name": "old", "version": "1.0.0", "context": {"even_number": 2}}`)
		requireError(t, a, http.StatusNotFound, CodeTemplateRetired)
	})
	t.Run("Duplicate", func(t *testing.T) {
		a := b.request(t, http.MethodPost, "/v1/tasks", `{"namespace": "api_test", "name": "numbers", "context": {"even_number": 2}}`)
		e := requireError(t, a, http.StatusConflict, CodeDuplicateTask)
		require.Equal(t, []map[string]any{{"existing_task_uuid": existing.UUID.String()}}, e.Details)
	})
	t.Run("BodyTooLarge", func(t *testing.T) {
		big := `{"namespace": "api_test", "name": "numbers", "reason": "` + strings.Repeat("x", 5000) + `"}`
		e := requireError(t, b.request(t, http.MethodPost, "/v1/tasks", big), http.StatusRequestEntityTooLarge, CodePayloadTooLarge)
		require.Contains(t, e.Message, "4096 bytes")
	})
}

func TestCreateTaskBadBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	badBodies := []struct {
		name, body, message string
		field               string
	}{
		{"Malformed", `{"namespace": `, "not valid JSON", ""},
		{"SyntaxError", `{"namespace" "x"}`, "not valid JSON", ""},
		{"Empty", ``, "the request body is empty", ""},
		{"NotAnObject", `[1, 2]`, "must be a JSON object, not an array", ""},
		{"TrailingData", `{"namespace": "a", "name": "b"} {}`, "more data after its JSON object", ""},
		{"UnknownField", `{"namespace": "a", "name": "b", "colour": "red"}`, "colour: is not a field of this request", "colour"},
		{"WrongType", `{"namespace": "a", "name": "b", "priority": "high"}`, "priority: must be a whole number in range, not a string", "priority"},
		{"PriorityOutOfRange", `{"namespace": "a", "name": "b", "priority": 99999999999}`, "priority: must be between", "priority"},
		{"BadCorrelationID", `{"namespace": "a", "name": "b", "correlation_id": "nope"}`, "correlation_id: must be a UUID", "correlation_id"},
	}
	for _, tc := range badBodies {
		t.Run(tc.name, func(t *testing.T) {
			e := requireError(t, b.request(t, http.MethodPost, "/v1/tasks", tc.body), http.StatusBadRequest, CodeInvalidRequest)
			require.Contains(t, e.Message, tc.message)
			if tc.field != "" {
				require.Len(t, e.Details, 1)
				require.Equal(t, tc.field, e.Details[0]["field"])
			}
		})
	}
}

func TestGetTask(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	created := b.createTask(t, `{"even_number": 2}`)

	task := decodeAs[Task](t, b.request(t, http.MethodGet, "/v1/tasks/"+created.UUID.String(), ""), http.StatusOK)
	require.Equal(t, created.UUID, task.UUID)
	require.Len(t, task.Steps, 2)

	b.runStep(t, success(`{"value": 4}`))
	task = decodeAs[Task](t, b.request(t, http.MethodGet, "/v1/tasks/"+created.UUID.String(), ""), http.StatusOK)
	require.Equal(t, 1, task.CompletedSteps)
	require.Equal(t, 50, task.CompletionPercentage)
	require.JSONEq(t, `{"value": 4}`, string(task.Step("first").Results))
	require.NotNil(t, task.Step("first").CompletedAt)

	e := requireError(t, b.request(t, http.MethodGet, "/v1/tasks/not-a-uuid", ""), http.StatusBadRequest, CodeInvalidRequest)
	require.Equal(t, "uuid", e.Details[0]["field"])
	e = requireError(t, b.request(t, http.MethodGet, "/v1/tasks/"+uuid.NewString(), ""), http.StatusNotFound, CodeTaskNotFound)
	require.Contains(t, e.Message, "not found")
}

func TestListTasks(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	first := b.createTask(t, `{"even_number": 2}`)
	second := b.createTask(t, `{"even_number": 4}`)
	b.runStep(t, success(`{"value": 4}`))

	list := decodeAs[TaskList](t, b.request(t, http.MethodGet, "/v1/tasks", ""), http.StatusOK)
	require.Equal(t, 2, list.Total)
	require.Equal(t, 1, list.Page)
	require.Equal(t, orchestration.DefaultPerPage, list.PerPage)
	require.Equal(t, []uuid.UUID{second.UUID, first.UUID}, []uuid.UUID{list.Tasks[0].UUID, list.Tasks[1].UUID})
	require.Empty(t, list.Tasks[0].Steps, "lists carry no steps")
	require.Equal(t, 2, list.Tasks[0].TotalSteps)
	require.Equal(t, 1, list.Tasks[0].CompletedSteps+list.Tasks[1].CompletedSteps, "one step ran")

	list = decodeAs[TaskList](t, b.request(t, http.MethodGet, "/v1/tasks?namespace=api_test&status=steps_in_process&page=2&per_page=1", ""), http.StatusOK)
	require.Equal(t, 2, list.Total)
	require.Equal(t, 2, list.Page)
	require.Equal(t, 1, list.PerPage)
	require.Len(t, list.Tasks, 1)
	require.Equal(t, first.UUID, list.Tasks[0].UUID)

	list = decodeAs[TaskList](t, b.request(t, http.MethodGet, "/v1/tasks?namespace=elsewhere", ""), http.StatusOK)
	require.Zero(t, list.Total)
	require.NotNil(t, list.Tasks, "an empty page is [] and not null")

	e := requireError(t, b.request(t, http.MethodGet, "/v1/tasks?status=running", ""), http.StatusBadRequest, CodeInvalidRequest)
	require.Equal(t, "status", e.Details[0]["field"])
	require.Contains(t, e.Message, "valid states: pending,")
	e = requireError(t, b.request(t, http.MethodGet, "/v1/tasks?namespace=%00", ""), http.StatusBadRequest, CodeInvalidRequest)
	require.Equal(t, "namespace", e.Details[0]["field"])
	for _, query := range []string{"page=0", "page=x", "per_page=-1", "per_page=101"} {
		e := requireError(t, b.request(t, http.MethodGet, "/v1/tasks?"+query, ""), http.StatusBadRequest, CodeInvalidRequest)
		require.Equal(t, strings.Split(query, "=")[0], e.Details[0]["field"], query)
	}
}
