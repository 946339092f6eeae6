package main

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/template"
)

// e2eNamespace is the workflow namespace of the end-to-end tests' template.
const e2eNamespace = "cli_e2e"

// e2e is a real API server over a real engine and database, with a test
// worker that the test drives one step at a time.
type e2e struct {
	t      *testing.T
	db     *pgtest.Database
	engine *orchestration.Engine
	server string
}

func setupE2E(t *testing.T) *e2e {
	t.Helper()
	db := pgtest.NewDatabase(t)
	engine := orchestration.NewEngine(db.Pool, orchestration.Config{ProcessID: "e2e"})
	def := template.Definition{
		NamespaceName: e2eNamespace, Name: "two_steps", Version: "1.0.0",
		InputSchema: json.RawMessage(`{"type": "object", "required": ["even_number"],
			"properties": {"even_number": {"type": "integer", "multipleOf": 2}}}`),
		Steps: []template.Step{
			{Name: "first", Handler: template.Handler{Callable: "cli_e2e.First"}},
			{Name: "second", Handler: template.Handler{Callable: "cli_e2e.Second"}, DependsOn: []string{"first"}},
		},
	}
	_, err := engine.Templates().Register(t.Context(), def, "test")
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(api.NewServer(engine, db.Pool, api.Config{Logger: logger}).Handler())
	t.Cleanup(srv.Close)
	return &e2e{t: t, db: db, engine: engine, server: srv.URL}
}

// tasker runs `tasker task ARGS --server URL`.
func (e *e2e) tasker(args ...string) (string, error) {
	args = append(append([]string{"task"}, args...), "--server", e.server)
	return runTasker(e.t.Context(), e.t, args...)
}

// taskerAsync runs `tasker task ARGS` in the background; the channel gets
// its output and error.
func (e *e2e) taskerAsync(args ...string) <-chan commandResult {
	done := make(chan commandResult, 1)
	go func() {
		out, err := e.tasker(args...)
		done <- commandResult{out: out, err: err}
	}()
	return done
}

type commandResult struct {
	out string
	err error
}

// wait returns the result of a background command.
func (e *e2e) wait(done <-chan commandResult) commandResult {
	e.t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		e.t.Fatal("the command did not end")
		return commandResult{}
	}
}

// work plays a worker for the next step message of the namespace, records
// the outcome, and lets the engine process it.
func (e *e2e) work(outcome dispatch.Outcome) {
	e.t.Helper()
	ctx := e.t.Context()
	executor, err := dispatch.NewExecutor(e.db.Pool, dispatch.ExecutorConfig{WorkerID: "e2e-worker"})
	require.NoError(e.t, err)
	var msgs []queue.Message
	require.Eventually(e.t, func() bool {
		msgs, err = queue.New().Read(ctx, e.db.Pool, dispatch.StepQueue(e2eNamespace), 30*time.Second, 1)
		return err == nil && len(msgs) == 1
	}, 30*time.Second, 10*time.Millisecond, "a step is enqueued")
	claim, err := executor.Claim(ctx, dispatch.StepQueue(e2eNamespace), msgs[0])
	require.NoError(e.t, err)
	require.NoError(e.t, executor.Record(ctx, claim, outcome))
	processed, err := e.engine.ProcessResults(ctx)
	require.NoError(e.t, err)
	require.Equal(e.t, 1, processed)
}

// createdUUID reads the task UUID from the table `task create` prints.
func createdUUID(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(out, "\n")
	require.GreaterOrEqual(t, len(lines), 2, out)
	require.True(t, strings.HasPrefix(lines[0], "UUID "), out)
	return strings.Fields(lines[1])[0]
}

func succeed(result string) dispatch.Outcome {
	return dispatch.Outcome{Result: json.RawMessage(result)}
}

func TestTaskCommandsEndToEnd(t *testing.T) {
	t.Parallel()
	e := setupE2E(t)

	_, err := e.tasker("create", e2eNamespace, "two_steps", "--context", `{"even_number": 3}`)
	require.ErrorContains(t, err, "400 INVALID_CONTEXT: ")
	require.ErrorContains(t, err, "\n  $.even_number: ", "each violation on its own line")

	contextFile := filepath.Join(t.TempDir(), "context.json")
	require.NoError(t, os.WriteFile(contextFile, []byte(`{"even_number": 6}`), 0o600))
	out, err := e.tasker("create", e2eNamespace, "two_steps", "--context", "@"+contextFile, "--initiator", "e2e")
	require.NoError(t, err)
	require.Contains(t, out, "cli_e2e/two_steps@1.0.0")
	id := createdUUID(t, out)

	_, err = e.tasker("create", e2eNamespace, "two_steps", "--context", `{"even_number": 6}`)
	require.ErrorContains(t, err, "409 DUPLICATE_TASK: ")
	require.ErrorContains(t, err, "\n  existing task "+id)

	out, err = e.tasker("get", id, "-o", "json")
	require.NoError(t, err)
	var task api.Task
	require.NoError(t, json.Unmarshal([]byte(out), &task))
	require.Equal(t, id, task.UUID.String())
	require.Equal(t, "e2e", task.Initiator)
	require.JSONEq(t, `{"even_number": 6}`, string(task.Context))
	require.Len(t, task.Steps, 2)
	require.Equal(t, orchestration.StepEnqueued, task.Steps[0].State)

	out, err = e.tasker("get", id)
	require.NoError(t, err)
	require.Contains(t, out, "Template:          cli_e2e/two_steps@1.0.0\n")
	require.Regexp(t, `(?m)^first\s+enqueued\s+0/\d+\s+-$`, out)

	out, err = e.tasker("list", "--namespace", e2eNamespace)
	require.NoError(t, err)
	require.Contains(t, out, id)
	require.Contains(t, out, "page 1 of 1 (1 tasks)\n")

	watch := e.taskerAsync("watch", id, "--interval", "10ms")
	e.work(succeed(`{"value": 36}`))
	e.work(succeed(`{"value": 1296}`))
	r := e.wait(watch)
	require.NoError(t, r.err, r.out)
	require.Contains(t, r.out, "2/2 steps complete · complete")
	require.Contains(t, r.out, "task "+id+" complete after ")
	require.Contains(t, r.out, "result of second: {\"value\":1296}\n")

	_, err = e.tasker("get", "0190a4b2-0000-7000-8000-000000000000")
	require.ErrorContains(t, err, "404 TASK_NOT_FOUND: ")
}

func TestTaskRecoveryEndToEnd(t *testing.T) {
	t.Parallel()
	e := setupE2E(t)
	boom := dispatch.Outcome{Error: &dispatch.StepError{Code: "BOOM", Message: "it broke"}}

	watch := e.taskerAsync("create", e2eNamespace, "two_steps", "--context", `{"even_number": 2}`, "--watch", "--interval", "10ms")
	e.work(boom)
	r := e.wait(watch)
	require.EqualError(t, r.err, "task ended blocked_by_failures: step first failed: BOOM: it broke")
	require.Contains(t, r.out, "first failed after 1/")
	id := createdUUID(t, r.out)

	out, err := e.tasker("retry-step", id, "first", "--reason", "fixed the input")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^first\s+enqueued\s`, out)

	e.work(boom)
	out, err = e.tasker("resolve-step", id, "first", "--result", `{"value": 4}`)
	require.NoError(t, err)
	require.Regexp(t, `(?m)^first\s+resolved_manually\s`, out)
	require.Regexp(t, `(?m)^second\s+enqueued\s`, out)

	out, err = e.tasker("cancel", id, "--reason", "no longer needed")
	require.NoError(t, err)
	require.Contains(t, out, "Status:            cancelled\n")

	_, err = e.tasker("watch", id)
	require.EqualError(t, err, "task ended cancelled")

	_, err = e.tasker("cancel", id)
	require.ErrorContains(t, err, "409 INVALID_STATE: ")
}
