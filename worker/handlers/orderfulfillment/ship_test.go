package orderfulfillment

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker/handlers/internal/steptest"
)

func TestShipOrderMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method   string
		carrier  string
		cost     Cents
		delivery string // from Friday 3 January 2025
		prefix   string
	}{
		{"standard", "UPS Ground", 899, "2025-01-10", "1Z"},
		{"express", "FedEx Express", 1500, "2025-01-07", "FX"},
		{"overnight", "FedEx Overnight", 2500, "2025-01-06", "FO"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			c := sampleContext()
			c["shipping"].(map[string]any)["method"] = tt.method
			res, err := setup(t).call(t, ShipOrder, c, 1)
			require.NoError(t, err)
			s := res.Result.(Shipment)
			require.Equal(t, tt.carrier, s.Carrier)
			require.Equal(t, tt.method, s.ServiceType)
			require.Equal(t, tt.cost, s.ShippingCost)
			require.Equal(t, tt.delivery, s.EstimatedDelivery)
			require.Equal(t, "label_created", s.ShippingStatus)
			require.Regexp(t, "^"+tt.prefix+"[0-9A-F]{16}$", s.TrackingNumber)
			require.Regexp(t, "^SHP-[0-9A-F]{20}$", s.ShipmentID)
		})
	}
}

func TestShipOrderErrors(t *testing.T) {
	t.Parallel()
	shipping := func(c map[string]any) map[string]any { return c["shipping"].(map[string]any) }
	tests := []struct {
		name string
		edit func(c map[string]any)
		code string
	}{
		{"no shipping", func(c map[string]any) { delete(c, "shipping") }, CodeMissingShippingInfo},
		{"shipping not an object", func(c map[string]any) { c["shipping"] = []any{} }, CodeMissingShippingInfo},
		{"no address", func(c map[string]any) { delete(shipping(c), "address") }, CodeMissingShippingAddress},
		{"empty address", func(c map[string]any) { shipping(c)["address"] = map[string]any{} }, CodeMissingShippingAddress},
		{"address not an object", func(c map[string]any) { shipping(c)["address"] = "1 Main St" }, CodeMissingShippingAddress},
		{"no method", func(c map[string]any) { delete(shipping(c), "method") }, CodeInvalidShippingMethod},
		{"unknown method", func(c map[string]any) { shipping(c)["method"] = "teleport" }, CodeInvalidShippingMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := sampleContext()
			tt.edit(c)
			_, err := setup(t).call(t, ShipOrder, c, 1)
			steptest.RequireStepError(t, err, tt.code, false)
		})
	}
}

func TestShipOrderNeedsPayment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	deps := map[string]any{}
	for _, link := range links[:2] {
		deps[link.Name] = steptest.Run(t, b.registry, steptest.New(t, steptest.Options{
			Name: link.Name, Callable: link.Callable, Context: sampleContext(), Dependencies: deps,
		}))
	}
	_, err := b.callWith(t, ShipOrder, sampleContext(), deps, 1)
	steptest.RequireStepError(t, err, CodeMissingDependency, true)
	require.ErrorContains(t, err, ProcessPayment)
}
