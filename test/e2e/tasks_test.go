package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/api"
)

// taskPollInterval is how often waitTask asks for a task.
const taskPollInterval = 50 * time.Millisecond

// settled reports whether a task will not move on without a person: it
// finished, or a step failed for good.
func settled(status string) bool {
	switch status {
	case "complete", "error", "cancelled", "resolved_manually", "blocked_by_failures":
		return true
	}
	return false
}

// createTask creates a task through c and fails the test on any error.
func createTask(t *testing.T, c *api.Client, namespace, name string, taskContext json.RawMessage) *api.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	task, err := c.CreateTask(ctx, api.CreateTaskRequest{Namespace: namespace, Name: name, Context: taskContext})
	require.NoError(t, err, "creating a %s/%s task", namespace, name)
	require.Equal(t, namespace, task.Namespace)
	require.Equal(t, name, task.Name)
	return task
}

// waitTask polls the task until it settles and returns it; it fails the
// test, with the task's last state, when timeout passes first.
func waitTask(t *testing.T, c *api.Client, id uuid.UUID, timeout time.Duration) *api.Task {
	t.Helper()
	task, err := pollTask(t.Context(), c, id, timeout, func(task *api.Task) bool { return settled(string(task.State)) })
	require.NoError(t, err, "task %s did not settle within %s; last seen: %s", id, timeout, describeTask(task))
	return task
}

// pollTask gets the task every taskPollInterval until done says yes, and
// returns it. On timeout it returns the last task seen with the error.
func pollTask(ctx context.Context, c *api.Client, id uuid.UUID, timeout time.Duration, done func(*api.Task) bool) (*api.Task, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(taskPollInterval)
	defer ticker.Stop()
	var last *api.Task
	for {
		task, err := c.GetTask(ctx, id)
		if err == nil {
			last = task
			if done(task) {
				return task, nil
			}
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return last, err
		}
	}
}

// describeTask renders a task's state and its steps' states for failure
// messages.
func describeTask(task *api.Task) string {
	if task == nil {
		return "never"
	}
	var b bytes.Buffer
	b.WriteString(string(task.State))
	for _, s := range task.Steps {
		b.WriteString("; " + s.Name + "=" + string(s.State))
		if s.Error != nil {
			b.WriteString(" (" + s.Error.Code + ": " + s.Error.Message + ")")
		}
	}
	return b.String()
}

// stepResult decodes the named step's result of a task, keeping numbers as
// written (json.Number), and fails the test when the step has none.
func stepResult(t *testing.T, task *api.Task, step string) map[string]any {
	t.Helper()
	s := task.Step(step)
	require.NotNil(t, s, "task %s has no step %s", task.UUID, step)
	require.NotEmpty(t, s.Results, "step %s has no result", step)
	return decodeNumbers(t, s.Results)
}

// decodeNumbers decodes a JSON object, keeping numbers as written
// (json.Number).
func decodeNumbers(t *testing.T, data json.RawMessage) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out map[string]any
	require.NoError(t, dec.Decode(&out), "decoding %s", data)
	return out
}

// requireComplete checks that the task and every step completed.
func requireComplete(t *testing.T, task *api.Task) {
	t.Helper()
	require.Equal(t, "complete", string(task.State), describeTask(task))
	require.Equal(t, api.ExecutionAllComplete, task.ExecutionStatus)
	require.Equal(t, 100, task.CompletionPercentage)
	require.NotNil(t, task.CompletedAt)
	for _, s := range task.Steps {
		require.Equal(t, "complete", string(s.State), "step %s", s.Name)
	}
}

// evenNumberContext returns the math workflows' context {"even_number": n},
// with n written as an exact JSON integer.
func evenNumberContext(n *big.Int) json.RawMessage {
	return json.RawMessage(`{"even_number": ` + n.String() + `}`)
}

// power returns n^exp as an exact decimal string.
func power(n *big.Int, exp int64) string {
	return new(big.Int).Exp(n, big.NewInt(exp), nil).String()
}
