package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/api"
)

// orderFailure is an order that a step of order fulfillment refuses, and
// how the task must end.
type orderFailure struct {
	name string
	// change turns the sample order into the failing one.
	change func(order map[string]any)
	// step is the step that fails, with the error code it reports.
	step, code string
	// retryable is the error's kind; a retryable error is retried until
	// the step's maxAttempts, a permanent one never.
	retryable bool
}

// orderFailures are the error paths of WORKFLOWS.md that the input schema
// lets through (it checks shapes, not the catalog, stock, tokens or
// totals).
var orderFailures = []orderFailure{
	{
		name:   "unknown_sku",
		change: func(o map[string]any) { o["items"] = []any{item("NOPE-404", 1, 10)} },
		step:   "validate_order", code: "PRODUCT_NOT_FOUND",
	},
	{
		name:   "order_total_above_50000",
		change: func(o map[string]any) { o["items"] = []any{item("WIDGET-001", 10, 5000.01)} },
		step:   "validate_order", code: "ORDER_TOTAL_TOO_HIGH",
	},
	{
		name:   "quantity_above_stock",
		change: func(o map[string]any) { o["items"] = []any{item("GADGET-002", 500, 1)} },
		step:   "reserve_inventory", code: "INSUFFICIENT_STOCK", retryable: true,
	},
	{
		name:   "declined_card",
		change: func(o map[string]any) { o["payment"].(map[string]any)["token"] = "tok_decline_x" },
		step:   "process_payment", code: "PAYMENT_DECLINED",
	},
}

// item is one order line.
func item(sku string, quantity int, price float64) map[string]any {
	return map[string]any{"sku": sku, "quantity": quantity, "price": price}
}

// testOrderFailures runs each failing order and checks that the failing
// step ends in error with its code after the right number of attempts,
// that the steps after it never ran, and that the task is blocked by the
// failure. A flaky gateway, in contrast, costs one retry and no failure.
func testOrderFailures(t *testing.T, s *suite) {
	t.Helper()
	for _, tc := range orderFailures {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			order := sampleOrder(t)
			tc.change(order)
			c := s.sys.NextClient()
			created := createTask(t, c, "order_fulfillment", "business_workflow", encode(t, order))
			task := waitTask(t, c, created.UUID, workflowTimeout)

			require.Equal(t, "blocked_by_failures", string(task.State), describeTask(task))
			require.Equal(t, "blocked_by_failures", task.ExecutionStatus)
			failed := task.Step(tc.step)
			require.NotNil(t, failed)
			require.Equal(t, "error", string(failed.State), describeTask(task))
			require.NotNil(t, failed.Error)
			require.Equal(t, tc.code, failed.Error.Code, failed.Error.Message)
			require.Equal(t, tc.retryable, failed.Error.Retryable)
			if tc.retryable {
				require.Equal(t, failed.MaxAttempts, failed.Attempts, "a retryable error uses every attempt")
				require.Greater(t, failed.MaxAttempts, 1)
			} else {
				require.Equal(t, 1, failed.Attempts, "a permanent error is never retried")
			}
			requireNotStartedAfter(t, task, tc.step)
		})
	}
	t.Run("flaky_gateway_retried_once", func(t *testing.T) {
		t.Parallel()
		order := sampleOrder(t)
		order["payment"].(map[string]any)["token"] = "tok_flaky_x"
		c := s.sys.NextClient()
		created := createTask(t, c, "order_fulfillment", "business_workflow", encode(t, order))
		task := waitTask(t, c, created.UUID, workflowTimeout)
		requireComplete(t, task)
		require.Equal(t, 2, task.Step("process_payment").Attempts)
		require.Equal(t, "completed", stepResult(t, task, "process_payment")["payment_status"])
	})
}

// requireNotStartedAfter checks that every step after failed (they all
// depend on it in order fulfillment) is still pending with no attempt, and
// every step before it completed.
func requireNotStartedAfter(t *testing.T, task *api.Task, failed string) {
	t.Helper()
	seen := false
	for _, step := range task.Steps {
		switch {
		case step.Name == failed:
			seen = true
		case seen:
			require.Equal(t, "pending", string(step.State), "step %s after the failure", step.Name)
			require.Zero(t, step.Attempts, "step %s after the failure", step.Name)
		default:
			require.Equal(t, "complete", string(step.State), "step %s before the failure", step.Name)
		}
	}
	require.True(t, seen, "no step %s", failed)
}
