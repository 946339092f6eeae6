package dispatch_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/template"
)

// fixture is a database with an engine (driven by hand, not running) and
// diamond templates registered in the namespaces it was made with.
type fixture struct {
	pool   *pgxpool.Pool
	engine *orchestration.Engine
	queue  *queue.Client
}

func newFixture(t *testing.T, namespaces ...string) *fixture {
	t.Helper()
	db := pgtest.NewDatabase(t)
	engine := orchestration.NewEngine(db.Pool, orchestration.Config{ProcessID: "orchestrator-1"})
	for _, ns := range namespaces {
		_, err := engine.Templates().Register(t.Context(), diamond(ns), "test")
		require.NoError(t, err)
	}
	return &fixture{pool: db.Pool, engine: engine, queue: queue.New()}
}

// diamond is start → (left, right) → end in namespace ns.
func diamond(ns string) template.Definition {
	zero := 0
	retry := &template.RetryPolicy{MaxAttempts: 3, BackoffBaseMs: 5, MaxBackoffMs: 50, JitterPercent: &zero}
	step := func(name string, parents ...string) template.Step {
		return template.Step{Name: name, Handler: template.Handler{Callable: ns + "." + name}, DependsOn: parents, Retry: retry}
	}
	return template.Definition{
		NamespaceName: ns, Name: "diamond", Version: "1.0.0", IdentityStrategy: template.IdentityAlwaysUnique,
		Steps: []template.Step{step("start"), step("left", "start"), step("right", "start"), step("end", "left", "right")},
	}
}

func (f *fixture) executor(t *testing.T, workerID string) *dispatch.Executor {
	t.Helper()
	e, err := dispatch.NewExecutor(f.pool, dispatch.ExecutorConfig{WorkerID: workerID, LeaseMargin: 5 * time.Second})
	require.NoError(t, err)
	return e
}

func (f *fixture) createTasks(t *testing.T, ns string, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		task, err := f.engine.CreateTask(t.Context(), orchestration.CreateTaskRequest{
			Namespace: ns, Name: "diamond", Context: json.RawMessage(`{"n": 1}`),
		})
		require.NoError(t, err)
		ids[i] = task.UUID
	}
	return ids
}

// read reads up to n visible messages of ns's step queue.
func (f *fixture) read(t *testing.T, ns string, n int) []queue.Message {
	t.Helper()
	msgs, err := f.queue.Read(t.Context(), f.pool, dispatch.StepQueue(ns), 30*time.Second, n)
	require.NoError(t, err)
	return msgs
}
