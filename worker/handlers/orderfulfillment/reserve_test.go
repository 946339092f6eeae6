package orderfulfillment

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker/handlers/internal/steptest"
)

func TestReserveInventoryStock(t *testing.T) {
	t.Parallel()
	line := func(sku, quantity string) map[string]any {
		return map[string]any{"sku": sku, "quantity": json.Number(quantity), "price": json.Number("1.00")}
	}
	tests := []struct {
		name  string
		items []any
		code  string
	}{
		{"all of WIDGET-001's stock", []any{line("WIDGET-001", "100")}, ""},
		{"one more than WIDGET-001's stock", []any{line("WIDGET-001", "101")}, CodeInsufficientStock},
		{"one more than WIDGET-002's stock", []any{line("WIDGET-002", "51")}, CodeInsufficientStock},
		{"all of GADGET-002's stock", []any{line("GADGET-002", "200")}, ""},
		{"one more than GADGET-002's stock", []any{line("GADGET-002", "201")}, CodeInsufficientStock},
		{"lines of one SKU add up", []any{line("WIDGET-002", "30"), line("WIDGET-002", "21")}, CodeInsufficientStock},
		{"quantities that would overflow", []any{
			map[string]any{"sku": "WIDGET-001", "quantity": json.Number("9223372036854775807"), "price": json.Number("0")},
			map[string]any{"sku": "WIDGET-001", "quantity": json.Number("9223372036854775807"), "price": json.Number("0")},
		}, CodeInsufficientStock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := sampleContext()
			c["items"] = tt.items
			res, err := setup(t).call(t, ReserveInventory, c, 1)
			if tt.code != "" {
				steptest.RequireStepError(t, err, tt.code, true)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "confirmed", res.Result.(Reservation).ReservationStatus)
		})
	}
}

func TestReserveInventoryDetails(t *testing.T) {
	t.Parallel()
	c := sampleContext()
	c["items"] = append(c["items"].([]any),
		map[string]any{"sku": "WIDGET-001", "quantity": json.Number("3"), "price": json.Number("29.99")})
	res, err := setup(t).call(t, ReserveInventory, c, 1)
	require.NoError(t, err)
	r := res.Result.(Reservation)
	require.Equal(t, []ReservedItem{
		{
			SKU: "WIDGET-001", ProductName: "Premium Widget A", QuantityReserved: 5, WarehouseLocation: "WH-EAST-A1",
			StockAvailable: 100, StockRemaining: 95, Value: 14995,
		},
		{
			SKU: "GADGET-002", ProductName: "Standard Gadget C", QuantityReserved: 1, WarehouseLocation: "WH-CENTRAL-C3",
			StockAvailable: 200, StockRemaining: 199, Value: 14999,
		},
	}, r.ReservationDetails)
	require.Equal(t, int64(6), r.ItemsReserved)
	require.Equal(t, Cents(29994), r.TotalReservedValue)
	require.Equal(t, friday.Add(ReservationTTL), r.ExpiresAt)
}

func TestReserveInventoryDependencyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		deps      map[string]any
		code      string
		retryable bool
	}{
		{"no validate_order result", map[string]any{}, CodeMissingDependency, true},
		{"null validate_order result", map[string]any{ValidateOrder: json.RawMessage(`null`)}, CodeMissingDependency, true},
		{"no validated items", map[string]any{ValidateOrder: json.RawMessage(`{"order_total": 1.00}`)}, CodeInvalidDependency, false},
		{"unreadable order total", map[string]any{ValidateOrder: json.RawMessage(`{"order_total": "lots"}`)}, CodeInvalidDependency, false},
		{"SKU without stock", map[string]any{ValidateOrder: ValidatedOrder{
			ValidatedItems: []ValidatedItem{{SKU: "NOPE-1", Quantity: 1, UnitPrice: 100, LineTotal: 100}}, OrderTotal: 100,
		}}, CodeProductNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := setup(t).callWith(t, ReserveInventory, sampleContext(), tt.deps, 1)
			steptest.RequireStepError(t, err, tt.code, tt.retryable)
		})
	}
}
