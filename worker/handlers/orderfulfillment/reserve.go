package orderfulfillment

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/taskerops/tasker/worker"
)

// CodeInsufficientStock is retryable: stock may be replenished before the
// next attempt.
const CodeInsufficientStock = "INSUFFICIENT_STOCK"

// ReservationTTL is how long a reservation holds before it expires.
const ReservationTTL = 15 * time.Minute

// ReservedItem is the reservation of one SKU (an order's lines of the same
// SKU are reserved together).
type ReservedItem struct {
	SKU               string `json:"sku"`
	ProductName       string `json:"product_name"`
	QuantityReserved  int64  `json:"quantity_reserved"`
	WarehouseLocation string `json:"warehouse_location"`
	// StockAvailable is the warehouse's stock before the reservation.
	StockAvailable int64 `json:"stock_available"`
	// StockRemaining is what the reservation leaves.
	StockRemaining int64 `json:"stock_remaining"`
	// Value is the sum of the reserved lines' totals.
	Value Cents `json:"value"`
}

// Reservation is the result of reserve_inventory.
type Reservation struct {
	ReservationID string `json:"reservation_id"`
	// ItemsReserved is the number of units reserved, all SKUs together.
	ItemsReserved      int64          `json:"items_reserved"`
	ReservationStatus  string         `json:"reservation_status"`
	TotalReservedValue Cents          `json:"total_reserved_value"`
	ReservedAt         time.Time      `json:"reserved_at"`
	ExpiresAt          time.Time      `json:"expires_at"`
	ReservationDetails []ReservedItem `json:"reservation_details"`
}

// reserveInventory is the handler of reserve_inventory: it checks every
// validated SKU against the warehouse stock and reserves it for
// ReservationTTL.
type reserveInventory struct {
	now func() time.Time
}

// Call implements worker.StepHandler.
func (h *reserveInventory) Call(_ context.Context, step *worker.TaskSequenceStep) (worker.StepResult, error) {
	order, err := validated(step)
	if err != nil {
		return worker.StepResult{}, err
	}
	details, err := reserveItems(order.ValidatedItems)
	if err != nil {
		return worker.StepResult{}, err
	}
	res := Reservation{
		ReservationID:     newID(step, "RES-", "reservation"),
		ReservationStatus: "confirmed",
		ReservedAt:        h.now().UTC(),
	}
	res.ExpiresAt = res.ReservedAt.Add(ReservationTTL)
	for _, d := range details {
		res.ItemsReserved = addUnits(res.ItemsReserved, d.QuantityReserved)
		res.TotalReservedValue += d.Value
	}
	res.ReservationDetails = details
	return worker.StepResult{Result: res}, nil
}

// reserveItems groups the lines by SKU, in order of first appearance, and
// checks each SKU's total quantity against its stock.
func reserveItems(items []ValidatedItem) ([]ReservedItem, error) {
	index := map[string]int{}
	var details []ReservedItem
	for _, item := range items {
		i, seen := index[item.SKU]
		if !seen {
			i = len(details)
			index[item.SKU] = i
			details = append(details, ReservedItem{SKU: item.SKU, ProductName: item.ProductName})
		}
		details[i].QuantityReserved = addUnits(details[i].QuantityReserved, item.Quantity)
		details[i].Value += item.LineTotal
	}
	for i := range details {
		if err := checkStock(&details[i]); err != nil {
			return nil, err
		}
	}
	return details, nil
}

// addUnits adds two non-negative quantities, saturating at MaxInt64 (far
// above any stock) instead of overflowing.
func addUnits(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// checkStock fills d's warehouse and stock, or fails when the SKU has no
// stock record (permanent) or too little stock (retryable).
func checkStock(d *ReservedItem) error {
	s, ok := lookupStock(d.SKU)
	if !ok {
		return worker.PermanentError(CodeProductNotFound,
			fmt.Sprintf("product %q has no stock record", d.SKU), map[string]string{"sku": d.SKU})
	}
	if d.QuantityReserved > s.available {
		return worker.RetryableError(CodeInsufficientStock,
			fmt.Sprintf("%s: %d requested, %d available at %s", d.SKU, d.QuantityReserved, s.available, s.location), 0)
	}
	d.WarehouseLocation = s.location
	d.StockAvailable = s.available
	d.StockRemaining = s.available - d.QuantityReserved
	return nil
}
