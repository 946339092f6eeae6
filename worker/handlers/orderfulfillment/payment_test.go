package orderfulfillment

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker/handlers/internal/steptest"
)

func TestProcessPaymentErrors(t *testing.T) {
	t.Parallel()
	payment := func(c map[string]any) map[string]any { return c["payment"].(map[string]any) }
	tests := []struct {
		name      string
		edit      func(c map[string]any)
		attempt   int
		code      string
		retryable bool
	}{
		{"no payment", func(c map[string]any) { delete(c, "payment") }, 1, CodeMissingPaymentInfo, false},
		{"payment not an object", func(c map[string]any) { c["payment"] = "card" }, 1, CodeMissingPaymentInfo, false},
		{"no method", func(c map[string]any) { delete(payment(c), "method") }, 1, CodeMissingPaymentMethod, false},
		{"unknown method", func(c map[string]any) { payment(c)["method"] = "cash" }, 1, CodeInvalidPaymentMethod, false},
		{"no token", func(c map[string]any) { delete(payment(c), "token") }, 1, CodeMissingPaymentToken, false},
		{"blank token", func(c map[string]any) { payment(c)["token"] = "  " }, 1, CodeMissingPaymentToken, false},
		{"declined", func(c map[string]any) { payment(c)["token"] = "tok_decline_card" }, 1, CodePaymentDeclined, false},
		{"declined on a retry too", func(c map[string]any) { payment(c)["token"] = "tok_decline" }, 2, CodePaymentDeclined, false},
		{"flaky gateway on attempt 1", func(c map[string]any) { payment(c)["token"] = "tok_flaky_1" }, 1, CodeGatewayUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := sampleContext()
			tt.edit(c)
			_, err := setup(t).call(t, ProcessPayment, c, tt.attempt)
			steptest.RequireStepError(t, err, tt.code, tt.retryable)
		})
	}
}

func TestProcessPaymentSucceeds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		method  string
		token   string
		attempt int
	}{
		{"flaky gateway on attempt 2", "credit_card", "tok_flaky_1", 2},
		{"flaky gateway on attempt 3", "credit_card", "tok_flaky", 3},
		{"debit card", "debit_card", "tok_debit", 1},
		{"paypal", "paypal", "tok_paypal", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := sampleContext()
			c["payment"] = map[string]any{"method": tt.method, "token": tt.token}
			res, err := setup(t).call(t, ProcessPayment, c, tt.attempt)
			require.NoError(t, err)
			p := res.Result.(Payment)
			require.Equal(t, "completed", p.PaymentStatus)
			require.Equal(t, tt.method, p.PaymentMethodUsed)
			require.Equal(t, Cents(20997), p.AmountCharged)
			require.Equal(t, Cents(609), p.GatewayFee)
			require.Equal(t, friday, p.ProcessedAt)
		})
	}
}

func TestProcessPaymentDependencies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	validated := steptest.Run(t, b.registry, steptest.New(t, steptest.Options{
		Name: ValidateOrder, Callable: ValidateOrderHandler, Context: sampleContext(),
	}))
	tests := []struct {
		name string
		deps map[string]any
	}{
		{"no validate_order result", map[string]any{ReserveInventory: json.RawMessage(`{"reservation_id": "RES-1"}`)}},
		{"no reserve_inventory result", map[string]any{ValidateOrder: validated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := b.callWith(t, ProcessPayment, sampleContext(), tt.deps, 1)
			steptest.RequireStepError(t, err, CodeMissingDependency, true)
		})
	}
}
