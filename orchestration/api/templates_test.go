package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/template"
)

func TestTemplates(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})

	t.Run("ListActive", func(t *testing.T) {
		list := decodeAs[TemplateList](t, b.request(t, http.MethodGet, "/v1/templates", ""), http.StatusOK)
		require.Len(t, list.Templates, 1)
		got := list.Templates[0]
		require.Equal(t, testNamespace, got.Namespace)
		require.Equal(t, "numbers", got.Name)
		require.Equal(t, "1.0.0", got.Version)
		require.Equal(t, "two steps in a row", got.Description)
		require.Equal(t, "strict", got.IdentityStrategy)
		require.JSONEq(t, evenNumberSchema, string(got.InputSchema))
		require.Equal(t, "test", got.Owner)
		require.False(t, got.Retired)
		require.False(t, got.CreatedAt.IsZero())
		var def template.Definition
		require.NoError(t, json.Unmarshal(got.Definition, &def))
		require.Len(t, def.Steps, 2)
	})
	t.Run("IncludeRetired", func(t *testing.T) {
		list := decodeAs[TemplateList](t, b.request(t, http.MethodGet, "/v1/templates?namespace=api_test&include_retired=true", ""), http.StatusOK)
		require.Len(t, list.Templates, 2)
		list = decodeAs[TemplateList](t, b.request(t, http.MethodGet, "/v1/templates?namespace=elsewhere", ""), http.StatusOK)
		require.NotNil(t, list.Templates)
		require.Empty(t, list.Templates)
	})
	t.Run("BadIncludeRetired", func(t *testing.T) {
		e := requireError(t, b.request(t, http.MethodGet, "/v1/templates?include_retired=perhaps", ""), http.StatusBadRequest, CodeInvalidRequest)
		require.Equal(t, "include_retired", e.Details[0]["field"])
	})
	t.Run("UnstorableText", func(t *testing.T) {
		for path, field := range map[string]string{
			"/v1/templates?namespace=a%00b":       "namespace",
			"/v1/templates?namespace=%ff":         "namespace",
			"/v1/templates/api_test/num%00/1.0.0": "name",
			"/v1/templates/api_test/numbers/%fe":  "version",
		} {
			e := requireError(t, b.request(t, http.MethodGet, path, ""), http.StatusBadRequest, CodeInvalidRequest)
			require.Equal(t, field, e.Details[0]["field"], path)
		}
	})
	t.Run("Get", func(t *testing.T) {
		got := decodeAs[Template](t, b.request(t, http.MethodGet, "/v1/templates/api_test/numbers/1.0.0", ""), http.StatusOK)
		require.Equal(t, "numbers", got.Name)
		retired := decodeAs[Template](t, b.request(t, http.MethodGet, "/v1/templates/api_test/old/1.0.0", ""), http.StatusOK)
		require.True(t, retired.Retired)
		require.NotNil(t, retired.RetiredAt)
	})
	t.Run("GetUnknown", func(t *testing.T) {
		e := requireError(t, b.request(t, http.MethodGet, "/v1/templates/api_test/numbers/9.9.9", ""), http.StatusNotFound, CodeTemplateNotFound)
		require.Contains(t, e.Message, "api_test/numbers@9.9.9")
	})
}

func TestExecutionStatus(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"pending": ExecutionProcessing, "initializing": ExecutionProcessing,
		"enqueuing_steps": ExecutionProcessing, "steps_in_process": ExecutionProcessing,
		"evaluating_results": ExecutionProcessing, "waiting_for_dependencies": ExecutionProcessing,
		"waiting_for_retry": ExecutionWaitingForRetry, "blocked_by_failures": ExecutionBlockedByFailures,
		"error": ExecutionBlockedByFailures, "complete": ExecutionAllComplete,
		"resolved_manually": ExecutionAllComplete, "cancelled": ExecutionCancelled,
	}
	require.Len(t, want, len(orchestration.TaskStates()), "every state is covered")
	for _, state := range orchestration.TaskStates() {
		require.Equal(t, want[string(state)], executionStatus(state), string(state))
	}
}
