package orderfulfillment

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/taskerops/tasker/worker"
)

// Error codes of ship_order; all are permanent.
const (
	CodeMissingShippingInfo    = "MISSING_SHIPPING_INFO"
	CodeMissingShippingAddress = "MISSING_SHIPPING_ADDRESS"
	CodeInvalidShippingMethod  = "INVALID_SHIPPING_METHOD"
)

// DateLayout is the layout of estimated_delivery.
const DateLayout = "2006-01-02"

// Shipment is the result of ship_order.
type Shipment struct {
	ShipmentID     string `json:"shipment_id"`
	TrackingNumber string `json:"tracking_number"`
	ShippingStatus string `json:"shipping_status"`
	// Carrier is "UPS Ground", "FedEx Express" or "FedEx Overnight".
	Carrier string `json:"carrier"`
	// ServiceType is the shipping method: standard, express or overnight.
	ServiceType  string `json:"service_type"`
	ShippingCost Cents  `json:"shipping_cost"`
	// EstimatedDelivery is a date (YYYY-MM-DD), the method's number of
	// business days after the label is created.
	EstimatedDelivery string `json:"estimated_delivery"`
	// ItemsShipped is the number of units shipped.
	ItemsShipped   int64     `json:"items_shipped"`
	PaymentID      string    `json:"payment_id"`
	ReservationID  string    `json:"reservation_id"`
	LabelCreatedAt time.Time `json:"label_created_at"`
}

// shipOrder is the handler of ship_order: it picks the carrier of the
// context's shipping method and creates the shipping label.
type shipOrder struct {
	now func() time.Time
}

// Call implements worker.StepHandler.
func (h *shipOrder) Call(_ context.Context, step *worker.TaskSequenceStep) (worker.StepResult, error) {
	method, err := shippingOf(step)
	if err != nil {
		return worker.StepResult{}, err
	}
	c, _ := lookupCarrier(method)
	order, err := validated(step)
	if err != nil {
		return worker.StepResult{}, err
	}
	var reservation Reservation
	if err := dependency(step, ReserveInventory, &reservation); err != nil {
		return worker.StepResult{}, err
	}
	var payment Payment
	if err := dependency(step, ProcessPayment, &payment); err != nil {
		return worker.StepResult{}, err
	}
	now := h.now().UTC()
	s := Shipment{
		ShipmentID:        newID(step, "SHP-", "shipment"),
		TrackingNumber:    trackingNumber(step, c),
		ShippingStatus:    "label_created",
		Carrier:           c.name,
		ServiceType:       method,
		ShippingCost:      c.cost,
		EstimatedDelivery: addBusinessDays(now, c.businessDays).Format(DateLayout),
		PaymentID:         payment.PaymentID,
		ReservationID:     reservation.ReservationID,
		LabelCreatedAt:    now,
	}
	for _, item := range order.ValidatedItems {
		s.ItemsShipped = addUnits(s.ItemsShipped, item.Quantity)
	}
	return worker.StepResult{Result: s}, nil
}

// shippingOf checks the context's shipping and returns its method.
func shippingOf(step *worker.TaskSequenceStep) (string, error) {
	raw, ok := step.ContextField("shipping")
	var shipping map[string]json.RawMessage
	if !ok || json.Unmarshal(raw, &shipping) != nil {
		return "", worker.PermanentError(CodeMissingShippingInfo, "the order has no shipping object", nil)
	}
	var address map[string]json.RawMessage
	if json.Unmarshal(shipping["address"], &address) != nil || len(address) == 0 {
		return "", worker.PermanentError(CodeMissingShippingAddress, "the shipping has no address", nil)
	}
	var method string
	_ = json.Unmarshal(shipping["method"], &method)
	if _, ok := lookupCarrier(method); !ok {
		return "", worker.PermanentError(CodeInvalidShippingMethod,
			fmt.Sprintf("shipping method %q is not one of standard, express, overnight", method),
			map[string]string{"method": method})
	}
	return method, nil
}
