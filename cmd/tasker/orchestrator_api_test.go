package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/orchestration/template"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// writeTokenFile writes content to a file of the test and returns its path.
func writeTokenFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// httpGet fetches a path of the API without a token.
func httpGet(t *testing.T, base, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestOrchestratorServesTheAPI starts `tasker orchestrator` with a listen
// address and a token file, drives a task through the API client, checks
// the open endpoints, and stops the command as SIGTERM would.
func TestOrchestratorServesTheAPI(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	addr := freeAddr(t)
	base := "http://" + addr
	tokenFile := writeTokenFile(t, "  tok3n\n")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := runTasker(ctx, t, "orchestrator", "--database-url", db.URL, "--listen", addr,
			"--api-token-file", tokenFile, "--poll-interval", "50ms", "--log-level", "warn")
		done <- err
	}()

	client := api.NewClient(base, "tok3n", nil)
	require.Eventually(t, func() bool { return client.Ready(ctx) == nil }, 30*time.Second, 50*time.Millisecond, "the API becomes ready")
	def := template.Definition{
		NamespaceName: "cli_api", Name: "one_step", Version: "1.0.0",
		Steps: []template.Step{{Name: "only", Handler: template.Handler{Callable: "cli_api.Only"}}},
	}
	_, err := orchestration.NewEngine(db.Pool, orchestration.Config{ProcessID: "test"}).Templates().Register(ctx, def, "test")
	require.NoError(t, err)

	task := exerciseTaskRoutes(ctx, t, client, base)
	requireOpenEndpoints(t, base)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "the orchestrator stops cleanly")
	case <-time.After(15 * time.Second):
		t.Fatal("the orchestrator did not stop")
	}
	_, err = client.GetTask(t.Context(), task.UUID)
	require.Error(t, err, "the API is shut down")
}

// exerciseTaskRoutes creates, reads, lists and cancels a task of
// cli_api/one_step, and checks that a request without the right token is
// refused. It returns the task.
func exerciseTaskRoutes(ctx context.Context, t *testing.T, client *api.Client, base string) *api.Task {
	t.Helper()
	task, err := client.CreateTask(ctx, api.CreateTaskRequest{Namespace: "cli_api", Name: "one_step"})
	require.NoError(t, err)
	got, err := client.GetTask(ctx, task.UUID)
	require.NoError(t, err)
	require.Equal(t, task.UUID, got.UUID)
	list, err := client.ListTasks(ctx, api.ListOptions{Namespace: "cli_api"})
	require.NoError(t, err)
	require.Equal(t, 1, list.Total)
	cancelled, err := client.CancelTask(ctx, task.UUID, "test over")
	require.NoError(t, err)
	require.Equal(t, api.ExecutionCancelled, cancelled.ExecutionStatus)

	status, body := httpGet(t, base, "/v1/tasks")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, `"code":"UNAUTHORIZED"`)
	_, err = api.NewClient(base, "wrong", nil).GetTask(ctx, task.UUID)
	var apiErr *api.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnauthorized, apiErr.Status)
	return task
}

// requireOpenEndpoints checks the probes, the metrics and the OpenAPI
// document, all served without a token.
func requireOpenEndpoints(t *testing.T, base string) {
	t.Helper()
	status, _ := httpGet(t, base, "/readyz")
	require.Equal(t, http.StatusOK, status)
	status, body := httpGet(t, base, "/metrics")
	require.Equal(t, http.StatusOK, status)
	for _, metric := range []string{"tasker_http_requests_total", `tasker_queue_depth{queue="cli_api_queue"}`, "go_goroutines"} {
		require.Contains(t, body, metric)
	}
	requireOpenAPINamesEveryRoute(t, base)
}

// requireOpenAPINamesEveryRoute checks the served OpenAPI document against
// the routes the API is documented to serve.
func requireOpenAPINamesEveryRoute(t *testing.T, base string) {
	t.Helper()
	status, body := httpGet(t, base, "/openapi.json")
	require.Equal(t, http.StatusOK, status)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" {
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	require.Equal(t, []string{
		"DELETE /v1/tasks/{uuid}",
		"GET /healthz", "GET /metrics", "GET /openapi.json", "GET /readyz",
		"GET /v1/tasks", "GET /v1/tasks/{uuid}",
		"GET /v1/templates", "GET /v1/templates/{namespace}/{name}/{version}",
		"POST /v1/tasks",
		"POST /v1/tasks/{uuid}/steps/{step}/resolve", "POST /v1/tasks/{uuid}/steps/{step}/retry",
	}, ops)
}

func TestOrchestratorAPIFlagErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "absent")
	_, err := runTasker(t.Context(), t, "orchestrator", "--database-url", "postgres://x", "--api-token-file", missing)
	require.ErrorContains(t, err, "--api-token-file: open "+missing)

	empty := writeTokenFile(t, " \n")
	_, err = runTasker(t.Context(), t, "orchestrator", "--database-url", "postgres://x", "--api-token-file", empty)
	require.ErrorContains(t, err, "--api-token-file: "+empty+" is empty")

	db := pgtest.NewDatabase(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })
	_, err = runTasker(t.Context(), t, "orchestrator", "--database-url", db.URL, "--skip-migrations", "--listen", taken.Addr().String())
	require.ErrorContains(t, err, "--listen: listen tcp "+taken.Addr().String())
}

func TestOrchestratorHelpNamesTheAPIFlags(t *testing.T) {
	t.Parallel()
	out, err := runTasker(t.Context(), t, "orchestrator", "--help")
	require.NoError(t, err)
	for _, flag := range []string{"--listen", "TASKER_LISTEN", `":8080"`, "--api-token-file", "TASKER_API_TOKEN_FILE", "--shutdown-timeout"} {
		require.Contains(t, out, flag)
	}
}
