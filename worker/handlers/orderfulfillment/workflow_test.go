package orderfulfillment

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/internal/steptest"
)

// friday is the fixed clock of the tests: Friday 3 January 2025, 10:00 UTC.
var friday = time.Date(2025, time.January, 3, 10, 0, 0, 0, time.UTC)

// links are the workflow's steps in topological order.
var links = []steptest.Link{
	{Name: ValidateOrder, Callable: ValidateOrderHandler},
	{Name: ReserveInventory, Callable: ReserveInventoryHandler},
	{Name: ProcessPayment, Callable: ProcessPaymentHandler},
	{Name: ShipOrder, Callable: ShipOrderHandler},
}

type bundle struct {
	registry *worker.Registry
}

func setup(t *testing.T) bundle {
	t.Helper()
	r := worker.NewRegistry()
	require.NoError(t, RegisterWithConfig(r, Config{Now: func() time.Time { return friday }}))
	return bundle{registry: r}
}

// sampleContext returns a fresh copy of the WORKFLOWS.md sample context.
func sampleContext() map[string]any {
	return map[string]any{
		"customer": map[string]any{"id": json.Number("12345"), "name": "John Doe", "email": "john.doe@example.com"},
		"items": []any{
			map[string]any{"sku": "WIDGET-001", "quantity": json.Number("2"), "price": json.Number("29.99")},
			map[string]any{"sku": "GADGET-002", "quantity": json.Number("1"), "price": json.Number("149.99")},
		},
		"payment": map[string]any{"method": "credit_card", "token": "tok_1234567890abcdef"},
		"shipping": map[string]any{"method": "standard", "address": map[string]any{
			"street": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701", "country": "US",
		}},
	}
}

// item returns the context's i-th item, to edit.
func item(c map[string]any, i int) map[string]any {
	return c["items"].([]any)[i].(map[string]any)
}

// call runs the named step with the results of the steps before it, which
// run first on the same context.
func (b bundle) call(t *testing.T, name string, taskContext any, attempt int) (worker.StepResult, error) {
	t.Helper()
	deps := map[string]any{}
	for _, link := range links {
		if link.Name == name {
			break
		}
		deps[link.Name] = steptest.Run(t, b.registry, steptest.New(t, steptest.Options{
			Name: link.Name, Callable: link.Callable, Context: taskContext, Dependencies: deps,
		}))
	}
	return b.callWith(t, name, taskContext, deps, attempt)
}

// callWith runs the named step with the given dependency results.
func (b bundle) callWith(t *testing.T, name string, taskContext any, deps map[string]any, attempt int) (worker.StepResult, error) {
	t.Helper()
	for _, link := range links {
		if link.Name == name {
			step := steptest.New(t, steptest.Options{
				Name: name, Callable: link.Callable,
				Context: taskContext, Dependencies: deps, Attempt: attempt,
			})
			return steptest.Call(t, b.registry, context.Background(), step)
		}
	}
	t.Fatalf("no step %q", name)
	return worker.StepResult{}, nil
}

// decode turns a raw result into a generic document, keeping numbers as
// they were written.
func decode(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	require.NoError(t, dec.Decode(&doc))
	return doc
}

// happyPath runs the whole workflow on the sample context and returns each
// step's raw result and decoded result.
func happyPath(t *testing.T) (map[string]json.RawMessage, map[string]map[string]any) {
	t.Helper()
	results := steptest.Chain(t, setup(t).registry, sampleContext(), links)
	docs := map[string]map[string]any{}
	for name, raw := range results {
		docs[name] = decode(t, raw)
	}
	return results, docs
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	_, docs := happyPath(t)
	validate, reserve, payment, ship := docs[ValidateOrder], docs[ReserveInventory], docs[ProcessPayment], docs[ShipOrder]
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"customer_id", validate["customer_id"], json.Number("12345")},
		{"order_total", validate["order_total"], json.Number("209.97")},
		{"validation_status", validate["validation_status"], "complete"},
		{"validated_at", validate["validated_at"], "2025-01-03T10:00:00Z"},
		{"reservation_status", reserve["reservation_status"], "confirmed"},
		{"total_reserved_value", reserve["total_reserved_value"], json.Number("209.97")},
		{"items_reserved", reserve["items_reserved"], json.Number("3")},
		{"expires_at", reserve["expires_at"], "2025-01-03T10:15:00Z"},
		{"amount_charged", payment["amount_charged"], json.Number("209.97")},
		{"gateway_fee", payment["gateway_fee"], json.Number("6.09")},
		{"payment_method_used", payment["payment_method_used"], "credit_card"},
		{"payment_status", payment["payment_status"], "completed"},
		{"payment reservation_id", payment["reservation_id"], reserve["reservation_id"]},
		{"shipping_status", ship["shipping_status"], "label_created"},
		{"carrier", ship["carrier"], "UPS Ground"},
		{"service_type", ship["service_type"], "standard"},
		{"shipping_cost", ship["shipping_cost"], json.Number("8.99")},
		{"estimated_delivery", ship["estimated_delivery"], "2025-01-10"},
		{"items_shipped", ship["items_shipped"], json.Number("3")},
		{"ship payment_id", ship["payment_id"], payment["payment_id"]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.got)
		})
	}
}

func TestHappyPathValidatedItems(t *testing.T) {
	t.Parallel()
	results, docs := happyPath(t)
	require.JSONEq(t, `[
		{"sku":"WIDGET-001","product_name":"Premium Widget A","quantity":2,"unit_price":29.99,"line_total":59.98,"category":"widgets"},
		{"sku":"GADGET-002","product_name":"Standard Gadget C","quantity":1,"unit_price":149.99,"line_total":149.99,"category":"gadgets"}
	]`, string(mustJSON(t, docs[ValidateOrder]["validated_items"])))
	require.Contains(t, string(results[ValidateOrder]), `"order_total":209.97`)
	require.Contains(t, string(results[ProcessPayment]), `"gateway_fee":6.09`)
}

func TestHappyPathIDs(t *testing.T) {
	t.Parallel()
	_, docs := happyPath(t)
	tests := []struct {
		step, field, pattern string
	}{
		{ReserveInventory, "reservation_id", `^RES-[0-9A-F]{20}$`},
		{ProcessPayment, "payment_id", `^PAY-[0-9A-F]{20}$`},
		{ProcessPayment, "transaction_id", `^TXN-[0-9A-F]{20}$`},
		{ShipOrder, "shipment_id", `^SHP-[0-9A-F]{20}$`},
		{ShipOrder, "tracking_number", `^1Z[0-9A-F]{16}$`},
	}
	seen := map[any]bool{}
	for _, tt := range tests {
		id := docs[tt.step][tt.field]
		require.Regexp(t, tt.pattern, id, tt.field)
		require.False(t, seen[id], "duplicate id %v", id)
		seen[id] = true
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return raw
}

func TestIDsAreStablePerStepAndUniquePerTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	deps := map[string]any{}
	for _, link := range links[:2] {
		deps[link.Name] = steptest.Run(t, b.registry, steptest.New(t, steptest.Options{
			Name: link.Name, Callable: link.Callable, Context: sampleContext(), Dependencies: deps,
		}))
	}
	step := steptest.New(t, steptest.Options{
		Name: ProcessPayment, Callable: ProcessPaymentHandler,
		Context: sampleContext(), Dependencies: deps,
	})
	first := decode(t, steptest.Run(t, b.registry, step))
	step.Step.Attempt = 2
	retried := decode(t, steptest.Run(t, b.registry, step))
	other := decode(t, steptest.Run(t, b.registry, steptest.New(t, steptest.Options{
		Name: ProcessPayment, Callable: ProcessPaymentHandler, Context: sampleContext(), Dependencies: deps,
	})))

	require.Equal(t, first["payment_id"], retried["payment_id"])
	require.Equal(t, first["transaction_id"], retried["transaction_id"])
	require.NotEqual(t, first["payment_id"], other["payment_id"])
	require.NotEqual(t, first["transaction_id"], other["transaction_id"])
}
