package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration"
)

func TestClient(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Token: "client-token"})
	ctx := t.Context()

	task, err := b.client.CreateTask(ctx, CreateTaskRequest{
		Namespace: testNamespace, Name: "numbers", Context: json.RawMessage(`{"even_number": 2}`),
		CorrelationID: uuid.New(), Priority: 2,
	})
	require.NoError(t, err)
	require.Equal(t, ExecutionProcessing, task.ExecutionStatus)

	got, err := b.client.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, task.UUID, got.UUID)
	require.Len(t, got.Steps, 2)

	list, err := b.client.ListTasks(ctx, ListOptions{Namespace: testNamespace, Status: "steps_in_process", Page: 1, PerPage: 10})
	require.NoError(t, err)
	require.Equal(t, 1, list.Total)
	require.Equal(t, 10, list.PerPage)

	b.runStep(t, permanentFailure())
	retried, err := b.client.RetryStep(ctx, task.UUID, "first", "again")
	require.NoError(t, err)
	require.Equal(t, orchestration.StepEnqueued, retried.Step("first").State)
	b.runStep(t, permanentFailure())
	resolved, err := b.client.ResolveStep(ctx, task.UUID, "first", json.RawMessage(`{"value": 4}`), "by hand")
	require.NoError(t, err)
	require.Equal(t, orchestration.StepResolvedManually, resolved.Step("first").State)

	cancelled, err := b.client.CancelTask(ctx, task.UUID, "")
	require.NoError(t, err)
	require.Equal(t, ExecutionCancelled, cancelled.ExecutionStatus)

	templates, err := b.client.ListTemplates(ctx, testNamespace)
	require.NoError(t, err)
	require.Len(t, templates, 1)
	tmpl, err := b.client.GetTemplate(ctx, testNamespace, "numbers", "1.0.0")
	require.NoError(t, err)
	require.Equal(t, "numbers", tmpl.Name)
	require.NoError(t, b.client.Ready(ctx))
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Token: "client-token"})
	ctx := t.Context()

	_, err := b.client.CreateTask(ctx, CreateTaskRequest{Namespace: testNamespace, Name: "numbers", Context: json.RawMessage(`{"even_number": 3}`)})
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadRequest, apiErr.Status)
	require.Equal(t, CodeInvalidContext, apiErr.Code)
	require.Len(t, apiErr.Details, 1)
	require.Equal(t, "INVALID_CONTEXT (400): the context does not match the input schema of api_test/numbers@1.0.0 [$.even_number: must be multiple of 2]", err.Error())

	_, err = b.client.CreateTask(ctx, CreateTaskRequest{Name: "numbers"})
	require.EqualError(t, err, "INVALID_REQUEST (400): namespace: is required", "a detail the message says is not repeated")

	task := b.createTask(t, `{"even_number": 2}`)
	_, err = b.client.CreateTask(ctx, CreateTaskRequest{Namespace: testNamespace, Name: "numbers", Context: json.RawMessage(`{"even_number": 2}`)})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, CodeDuplicateTask, apiErr.Code)
	require.Contains(t, err.Error(), "[existing task "+task.UUID.String()+"]")

	_, err = b.client.GetTask(ctx, uuid.New())
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, CodeTaskNotFound, apiErr.Code)
	require.Empty(t, apiErr.Details)

	_, err = NewClient(b.http.URL, "", nil).ListTasks(ctx, ListOptions{})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnauthorized, apiErr.Status)
	require.Contains(t, err.Error(), "UNAUTHORIZED (401)")

	_, err = b.client.ListTasks(ctx, ListOptions{Status: "bogus"})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "status", detailField(t, apiErr.Details[0]))
}

func TestClientDecodesForeignErrors(t *testing.T) {
	t.Parallel()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>upstream is down</html>"))
	}))
	t.Cleanup(proxy.Close)

	_, err := NewClient(proxy.URL+"/", "", proxy.Client()).GetTask(t.Context(), uuid.New())
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadGateway, apiErr.Status)
	require.Equal(t, "BAD_GATEWAY", apiErr.Code)
	require.Equal(t, "<html>upstream is down</html>", apiErr.Message)
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	err := &Error{Status: 400, Code: CodeInvalidRequest, Message: "bad", Details: []json.RawMessage{
		json.RawMessage(`{"field": "page", "message": "must be positive"}`),
		json.RawMessage(`{"path": "$.x", "message": "must be string"}`),
		json.RawMessage(`"free text"`),
	}}
	require.Equal(t, `INVALID_REQUEST (400): bad [page: must be positive; $.x: must be string; "free text"]`, err.Error())
}

func detailField(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var d FieldDetail
	require.NoError(t, json.Unmarshal(raw, &d))
	return d.Field
}
