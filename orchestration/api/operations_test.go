package api

import (
	"maps"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	task := b.createTask(t, `{"even_number": 2}`)
	_, err := b.client.GetTask(t.Context(), task.UUID)
	require.NoError(t, err)
	b.request(t, http.MethodGet, "/v1/tasks/nope", "")
	b.request(t, http.MethodGet, "/nowhere", "")
	b.request(t, "BREW", "/v1/tasks", "")

	requests := func(route, method, code string) float64 {
		return counterValue(t, b, "tasker_http_requests_total", map[string]string{"route": route, "method": method, "code": code})
	}
	require.InDelta(t, 1, requests("/v1/tasks", "POST", "201"), 0)
	require.InDelta(t, 1, requests("/v1/tasks/{uuid}", "GET", "200"), 0)
	require.InDelta(t, 1, requests("/v1/tasks/{uuid}", "GET", "400"), 0)
	require.InDelta(t, 1, requests(unmatchedRoute, "GET", "404"), 0)
	require.InDelta(t, 1, requests(unmatchedRoute, "OTHER", "405"), 0,
		"made-up methods share one label value")
	require.InDelta(t, 1, counterValue(t, b, "tasker_tasks_created_total", map[string]string{"namespace": testNamespace, "name": "numbers"}), 0)

	a := b.request(t, http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, a.status)
	body := string(a.body)
	for _, line := range []string{
		`tasker_http_requests_total{code="201",method="POST",route="/v1/tasks"} 1`,
		`tasker_http_request_duration_seconds_count{route="/v1/tasks"} 1`,
		`tasker_tasks_created_total{name="numbers",namespace="api_test"} 1`,
		`tasker_queue_depth{queue="api_test_queue"} 1`,
		`tasker_queue_visible{queue="api_test_queue"} 1`,
		`tasker_queue_depth{queue="orchestration_step_results"} 0`,
		`tasker_queue_depth{queue="orchestration_task_requests"} 0`,
	} {
		require.Contains(t, body, line)
	}
}

// counterValue reads the value of the named counter with exactly the given
// label values, from the registry; 0 when there is no such series.
func counterValue(t *testing.T, b *bundle, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := b.registry.Gather()
	require.NoError(t, err)
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, metric := range family.GetMetric() {
			got := map[string]string{}
			for _, pair := range metric.GetLabel() {
				got[pair.GetName()] = pair.GetValue()
			}
			if maps.Equal(got, labels) {
				return metric.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestMetricsSharedBetweenServers(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	other := NewServer(b.engine, b.db.Pool, Config{Registerer: b.registry})
	require.Same(t, b.server.metrics.requests, other.metrics.requests, "a second server reuses the registered metrics")
}

func TestQueueMetricsSurviveADatabaseFailure(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	require.Equal(t, http.StatusOK, b.request(t, http.MethodGet, "/healthz", "").status)
	b.db.Pool.Close()
	a := b.request(t, http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, a.status, "the scrape still answers")
	require.Contains(t, string(a.body), "tasker_http_requests_total")
	require.NotContains(t, string(a.body), "tasker_queue_depth{")
	require.Contains(t, b.logs.String(), "queue metrics:")
}
