package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/template"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testNamespace is the workflow namespace of the test templates.
const testNamespace = "api_test"

const evenNumberSchema = `{"type":"object","required":["even_number"],
 "properties":{"even_number":{"type":"integer","minimum":2,"multipleOf":2}}}`

// numbersTemplate is a two-step template: first, then second.
func numbersTemplate(name, version string) template.Definition {
	return template.Definition{
		NamespaceName: testNamespace, Name: name, Version: version,
		Description: "two steps in a row",
		InputSchema: json.RawMessage(evenNumberSchema),
		Steps: []template.Step{
			{Name: "first", Handler: template.Handler{Callable: "api_test.First"}},
			{Name: "second", Handler: template.Handler{Callable: "api_test.Second"}, DependsOn: []string{"first"}},
		},
	}
}

// bundle is what a test gets: the server under test over a real engine
// and database, an HTTP server for it, and a client of that server.
type bundle struct {
	db       *pgtest.Database
	engine   *orchestration.Engine
	server   *Server
	http     *httptest.Server
	client   *Client
	registry *prometheus.Registry
	logs     *syncBuffer
}

// setup starts the API with cfg (Registerer and Logger are the test's) on
// a fresh database holding the numbers template 1.0.0 and the retired
// template "old". Hooks may change the server before it serves.
func setup(t *testing.T, cfg Config, hooks ...func(*Server)) *bundle {
	t.Helper()
	db := pgtest.NewDatabase(t)
	engine := orchestration.NewEngine(db.Pool, orchestration.Config{ProcessID: "api-test", Logger: slog.New(slog.DiscardHandler)})
	for _, def := range []template.Definition{numbersTemplate("numbers", "1.0.0"), numbersTemplate("old", "1.0.0")} {
		_, err := engine.Templates().Register(t.Context(), def, "test")
		require.NoError(t, err)
	}
	_, err := engine.Templates().Retire(t.Context(), testNamespace, "old", "1.0.0")
	require.NoError(t, err)

	b := &bundle{db: db, engine: engine, registry: prometheus.NewRegistry(), logs: &syncBuffer{}}
	cfg.Registerer = b.registry
	cfg.Logger = slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.server = NewServer(engine, db.Pool, cfg)
	for _, hook := range hooks {
		hook(b.server)
	}
	b.http = httptest.NewServer(b.server.Handler())
	t.Cleanup(b.http.Close)
	b.client = NewClient(b.http.URL, cfg.Token, b.http.Client())
	return b
}

// answer is a raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// request sends a raw request; body "" sends none. Header pairs follow.
func (b *bundle) request(t *testing.T, method, path, body string, header ...string) answer {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.http.URL+path, reader)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.http.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

// wireError is an error body as the test reads it.
type wireError struct {
	Code    string           `json:"code"`
	Message string           `json:"message"`
	Details []map[string]any `json:"details"`
}

// requireError checks the status and code of an error answer and returns
// its body.
func requireError(t *testing.T, a answer, status int, code string) wireError {
	t.Helper()
	require.Equal(t, status, a.status, "body: %s", a.body)
	require.Equal(t, "application/json", a.header.Get("Content-Type"))
	var envelope struct {
		Error wireError `json:"error"`
	}
	require.NoError(t, json.Unmarshal(a.body, &envelope), "body: %s", a.body)
	require.Equal(t, code, envelope.Error.Code, "body: %s", a.body)
	require.NotEmpty(t, envelope.Error.Message)
	return envelope.Error
}

// decodeAs decodes a successful answer with the expected status.
func decodeAs[T any](t *testing.T, a answer, status int) T {
	t.Helper()
	require.Equal(t, status, a.status, "body: %s", a.body)
	var v T
	require.NoError(t, json.Unmarshal(a.body, &v), "body: %s", a.body)
	return v
}

// createTask creates a numbers task through the client.
func (b *bundle) createTask(t *testing.T, context string) *Task {
	t.Helper()
	task, err := b.client.CreateTask(t.Context(), CreateTaskRequest{
		Namespace: testNamespace, Name: "numbers", Context: json.RawMessage(context),
	})
	require.NoError(t, err)
	return task
}

// runStep plays a worker for the next step message of the namespace with
// the given outcome, then lets the engine process the result.
func (b *bundle) runStep(t *testing.T, outcome dispatch.Outcome) {
	t.Helper()
	ctx := t.Context()
	executor, err := dispatch.NewExecutor(b.db.Pool, dispatch.ExecutorConfig{WorkerID: "api-test-worker"})
	require.NoError(t, err)
	queueName := dispatch.StepQueue(testNamespace)
	msgs, err := queue.New().Read(ctx, b.db.Pool, queueName, 30*time.Second, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1, "one step message waits")
	claim, err := executor.Claim(ctx, queueName, msgs[0])
	require.NoError(t, err)
	require.NoError(t, executor.Record(ctx, claim, outcome))
	n, err := b.engine.ProcessResults(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// success is an outcome that completes a step with the result.
func success(result string) dispatch.Outcome {
	return dispatch.Outcome{Result: json.RawMessage(result)}
}

// permanentFailure is an outcome that fails a step for good.
func permanentFailure() dispatch.Outcome {
	return dispatch.Outcome{Error: &dispatch.StepError{Code: "BOOM", Message: "it broke", Retryable: false}}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
