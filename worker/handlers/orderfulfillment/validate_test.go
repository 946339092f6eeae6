package orderfulfillment

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker/handlers/internal/steptest"
)

func TestValidateOrderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c map[string]any)
		code string
	}{
		{"no customer", func(c map[string]any) { delete(c, "customer") }, CodeMissingCustomerInfo},
		{"customer not an object", func(c map[string]any) { c["customer"] = "John" }, CodeMissingCustomerInfo},
		{"no customer id", func(c map[string]any) { delete(c["customer"].(map[string]any), "id") }, CodeMissingCustomerID},
		{"blank customer id", func(c map[string]any) { c["customer"].(map[string]any)["id"] = " " }, CodeMissingCustomerID},
		{"fractional customer id", func(c map[string]any) { c["customer"].(map[string]any)["id"] = json.Number("1.5") }, CodeMissingCustomerID},
		{"no customer email", func(c map[string]any) { delete(c["customer"].(map[string]any), "email") }, CodeMissingCustomerEmail},
		{"empty customer email", func(c map[string]any) { c["customer"].(map[string]any)["email"] = "" }, CodeMissingCustomerEmail},
		{"no items", func(c map[string]any) { delete(c, "items") }, CodeMissingOrderItems},
		{"items not a list", func(c map[string]any) { c["items"] = map[string]any{} }, CodeMissingOrderItems},
		{"empty items", func(c map[string]any) { c["items"] = []any{} }, CodeEmptyOrderItems},
		{"item without sku", func(c map[string]any) { delete(item(c, 0), "sku") }, CodeInvalidOrderItem},
		{"item without price", func(c map[string]any) { delete(item(c, 1), "price") }, CodeInvalidOrderItem},
		{"item not an object", func(c map[string]any) { c["items"].([]any)[0] = "WIDGET-001" }, CodeInvalidOrderItem},
		{"zero quantity", func(c map[string]any) { item(c, 0)["quantity"] = json.Number("0") }, CodeInvalidQuantity},
		{"fractional quantity", func(c map[string]any) { item(c, 0)["quantity"] = json.Number("1.5") }, CodeInvalidQuantity},
		{"quantity as a string", func(c map[string]any) { item(c, 0)["quantity"] = "2" }, CodeInvalidQuantity},
		{"negative price", func(c map[string]any) { item(c, 0)["price"] = json.Number("-0.01") }, CodeInvalidPrice},
		{"fraction of a cent", func(c map[string]any) { item(c, 0)["price"] = json.Number("29.999") }, CodeInvalidPrice},
		{"price as a string", func(c map[string]any) { item(c, 0)["price"] = "29.99" }, CodeInvalidPrice},
		{"unknown sku", func(c map[string]any) { item(c, 1)["sku"] = "GADGET-999" }, CodeProductNotFound},
		{"total too high", func(c map[string]any) { item(c, 1)["quantity"] = json.Number("1000") }, CodeOrderTotalTooHigh},
		{"total one cent too high", func(c map[string]any) {
			c["items"] = []any{map[string]any{"sku": "WIDGET-002", "quantity": json.Number("1"), "price": json.Number("50000.01")}}
		}, CodeOrderTotalTooHigh},
		{"price beyond int64 cents", func(c map[string]any) { item(c, 0)["price"] = json.Number("1e30") }, CodeOrderTotalTooHigh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := sampleContext()
			tt.edit(c)
			_, err := setup(t).call(t, ValidateOrder, c, 1)
			steptest.RequireStepError(t, err, tt.code, false)
		})
	}
}

func TestValidateOrderTotals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		items []any
		want  Cents
	}{
		{"sample", sampleContext()["items"].([]any), 20997},
		{"exactly the limit", []any{
			map[string]any{"sku": "WIDGET-002", "quantity": json.Number("2"), "price": json.Number("25000")},
		}, MaxOrderTotal},
		{"free item", []any{
			map[string]any{"sku": "WIDGET-001", "quantity": json.Number("3"), "price": json.Number("0")},
		}, 0},
		{"prices that float64 sums get wrong", []any{
			map[string]any{"sku": "WIDGET-001", "quantity": json.Number("1"), "price": json.Number("0.1")},
			map[string]any{"sku": "WIDGET-002", "quantity": json.Number("1"), "price": json.Number("0.2")},
		}, 30},
		{"exponent and integral quantity", []any{
			map[string]any{"sku": "GADGET-002", "quantity": json.Number("2.0"), "price": json.Number("1.4999e2")},
		}, 29998},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := sampleContext()
			c["items"] = tt.items
			res, err := setup(t).call(t, ValidateOrder, c, 1)
			require.NoError(t, err)
			order := res.Result.(ValidatedOrder)
			require.Equal(t, tt.want, order.OrderTotal)
			var sum Cents
			for _, it := range order.ValidatedItems {
				require.Equal(t, Cents(it.Quantity)*it.UnitPrice, it.LineTotal)
				sum += it.LineTotal
			}
			require.Equal(t, tt.want, sum)
		})
	}
}

func TestValidateOrderCustomerID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		id   any
		want string
	}{
		{"number", json.Number("12345"), `12345`},
		{"string", "cus_42", `"cus_42"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := sampleContext()
			c["customer"].(map[string]any)["id"] = tt.id
			res, err := setup(t).call(t, ValidateOrder, c, 1)
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(res.Result.(ValidatedOrder).CustomerID))
		})
	}
}
