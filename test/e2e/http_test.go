package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/api"
)

// errorBody is the API's error envelope.
type errorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Details []json.RawMessage `json:"details"`
	} `json:"error"`
}

// postTask sends body as is to POST /v1/tasks on orchestrator i, with the
// token, and returns the status and the decoded error body (zero on
// success).
func postTask(t *testing.T, s *suite, i int, body string) (int, errorBody) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.sys.BaseURL(i)+"/v1/tasks", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.sys.Token())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out errorBody
	if resp.StatusCode >= 400 {
		require.NoError(t, json.Unmarshal(data, &out), "error body %s", data)
		require.NotEmpty(t, out.Error.Message, "error body %s", data)
	}
	return resp.StatusCode, out
}

// linearRequest is a POST /v1/tasks body for the linear workflow with the
// given context.
func linearRequest(taskContext string) string {
	return `{"namespace": "linear_workflow", "name": "mathematical_sequence", "context": ` + taskContext + `}`
}

// testBadInput sends invalid requests over HTTP: each gets its status and
// code, and the ones about the context name the offending field.
func testBadInput(t *testing.T, s *suite) {
	t.Helper()
	t.Run("odd_number_names_its_path", func(t *testing.T) {
		status, body := postTask(t, s, 0, linearRequest(`{"even_number": 7}`))
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, api.CodeInvalidContext, body.Error.Code)
		detail := firstDetail(t, body)
		require.Equal(t, "$.even_number", detail.Path)
		require.NotEmpty(t, detail.Message)
	})
	t.Run("missing_number_is_named", func(t *testing.T) {
		status, body := postTask(t, s, 1, linearRequest(`{}`))
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, api.CodeInvalidContext, body.Error.Code)
		require.Contains(t, body.Error.Message+string(joinDetails(body)), "even_number")
	})
	t.Run("context_not_an_object", func(t *testing.T) {
		for _, ctx := range []string{`[6]`, `"six"`, `6`} {
			status, body := postTask(t, s, 0, linearRequest(ctx))
			require.Equal(t, http.StatusBadRequest, status, "context %s", ctx)
			require.Equal(t, api.CodeInvalidContext, body.Error.Code, "context %s", ctx)
			require.Equal(t, "$", firstDetail(t, body).Path, "context %s", ctx)
		}
	})
	t.Run("malformed_json", func(t *testing.T) {
		status, body := postTask(t, s, 1, `{"namespace": "linear_workflow", "context": {"even_number": 6}`)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, api.CodeInvalidRequest, body.Error.Code)
	})
	t.Run("unknown_template", func(t *testing.T) {
		status, body := postTask(t, s, 0, `{"namespace": "linear_workflow", "name": "no_such_template", "context": {"even_number": 6}}`)
		require.Equal(t, http.StatusNotFound, status)
		require.Equal(t, api.CodeTemplateNotFound, body.Error.Code)
	})
}

// violation is a detail of INVALID_CONTEXT.
type violation struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// firstDetail decodes the first detail of an INVALID_CONTEXT answer.
func firstDetail(t *testing.T, body errorBody) violation {
	t.Helper()
	require.NotEmpty(t, body.Error.Details, body.Error.Message)
	var v violation
	require.NoError(t, json.Unmarshal(body.Error.Details[0], &v))
	return v
}

// joinDetails returns an error body's details, one JSON text after the
// other.
func joinDetails(body errorBody) []byte {
	var out []byte
	for _, d := range body.Error.Details {
		out = append(out, d...)
	}
	return out
}

// testAuthentication checks that the API refuses requests without the
// token, or with a wrong one, and accepts the right one.
func testAuthentication(t *testing.T, s *suite) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, token := range []string{"", "wrong-token"} {
		_, err := api.NewClient(s.sys.BaseURL(0), token, nil).ListTasks(ctx, api.ListOptions{})
		var apiErr *api.Error
		require.ErrorAs(t, err, &apiErr, "token %q", token)
		require.Equal(t, http.StatusUnauthorized, apiErr.Status, "token %q", token)
		require.Equal(t, api.CodeUnauthorized, apiErr.Code, "token %q", token)
	}
	_, err := s.sys.Client(1).ListTasks(ctx, api.ListOptions{PerPage: 1})
	require.NoError(t, err)
}

// testProbes checks every process's probes and metrics: 200 from /healthz
// and /readyz, and on the workers a step counter in /metrics (after the
// workflow tests, every worker has finished steps).
func testProbes(t *testing.T, s *suite) {
	t.Helper()
	for _, p := range s.sys.Processes() {
		require.Equal(t, http.StatusOK, get(t, p.Addr, "/healthz").status, p.Name)
		require.Equal(t, http.StatusOK, get(t, p.Addr, "/readyz").status, p.Name)
		metrics := get(t, p.Addr, "/metrics")
		require.Equal(t, http.StatusOK, metrics.status, p.Name)
		require.Contains(t, metrics.body, "go_goroutines", p.Name)
	}
	for _, w := range s.sys.Workers {
		require.Contains(t, get(t, w.Addr, "/metrics").body, "tasker_steps_finished_total", w.Name)
	}
}

// answer is a status and a body.
type answer struct {
	status int
	body   string
}

// get sends GET http://addr+path without credentials.
func get(t *testing.T, addr, path string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, body: string(data)}
}
