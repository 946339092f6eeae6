package orderfulfillment

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/internal/jsonnum"
)

// Error codes of validate_order; all are permanent.
const (
	CodeMissingCustomerInfo  = "MISSING_CUSTOMER_INFO"
	CodeMissingCustomerID    = "MISSING_CUSTOMER_ID"
	CodeMissingCustomerEmail = "MISSING_CUSTOMER_EMAIL"
	CodeMissingOrderItems    = "MISSING_ORDER_ITEMS"
	CodeEmptyOrderItems      = "EMPTY_ORDER_ITEMS"
	CodeInvalidOrderItem     = "INVALID_ORDER_ITEM"
	CodeInvalidQuantity      = "INVALID_QUANTITY"
	CodeInvalidPrice         = "INVALID_PRICE"
	CodeOrderTotalTooHigh    = "ORDER_TOTAL_TOO_HIGH"
)

// MaxOrderTotal is the largest order total validate_order accepts (50000.00).
const MaxOrderTotal Cents = 5_000_000

// ValidatedItem is one line of a validated order.
type ValidatedItem struct {
	SKU         string `json:"sku"`
	ProductName string `json:"product_name"`
	Quantity    int64  `json:"quantity"`
	UnitPrice   Cents  `json:"unit_price"`
	LineTotal   Cents  `json:"line_total"`
	Category    string `json:"category"`
}

// ValidatedOrder is the result of validate_order.
type ValidatedOrder struct {
	// CustomerID is the customer's id as the context gives it (number or
	// string).
	CustomerID       json.RawMessage `json:"customer_id"`
	ValidatedItems   []ValidatedItem `json:"validated_items"`
	OrderTotal       Cents           `json:"order_total"`
	ValidationStatus string          `json:"validation_status"`
	ValidatedAt      time.Time       `json:"validated_at"`
}

// validateOrder is the handler of validate_order: it checks the customer
// and the items against the catalog and totals the order in cents.
type validateOrder struct {
	now func() time.Time
}

// Call implements worker.StepHandler.
func (h *validateOrder) Call(_ context.Context, step *worker.TaskSequenceStep) (worker.StepResult, error) {
	customerID, err := customerOf(step)
	if err != nil {
		return worker.StepResult{}, err
	}
	items, err := itemsOf(step)
	if err != nil {
		return worker.StepResult{}, err
	}
	total, err := totalOf(items)
	if err != nil {
		return worker.StepResult{}, err
	}
	return worker.StepResult{Result: ValidatedOrder{
		CustomerID:       customerID,
		ValidatedItems:   items,
		OrderTotal:       total,
		ValidationStatus: "complete",
		ValidatedAt:      h.now().UTC(),
	}}, nil
}

// customerOf checks the context's customer and returns its id.
func customerOf(step *worker.TaskSequenceStep) (json.RawMessage, error) {
	raw, ok := step.ContextField("customer")
	var customer map[string]json.RawMessage
	if !ok || json.Unmarshal(raw, &customer) != nil {
		return nil, worker.PermanentError(CodeMissingCustomerInfo, "the order has no customer object", nil)
	}
	id := customer["id"]
	if !validCustomerID(id) {
		return nil, worker.PermanentError(CodeMissingCustomerID, "the customer has no id (an integer or a non-empty string)", nil)
	}
	var email string
	if json.Unmarshal(customer["email"], &email) != nil || strings.TrimSpace(email) == "" {
		return nil, worker.PermanentError(CodeMissingCustomerEmail, "the customer has no email", nil)
	}
	return id, nil
}

// validCustomerID reports whether id is an integer or a non-blank string,
// as the template's input schema requires.
func validCustomerID(id json.RawMessage) bool {
	var text string
	if json.Unmarshal(id, &text) == nil {
		return strings.TrimSpace(text) != ""
	}
	_, err := jsonnum.Int(id)
	return err == nil
}

// itemsOf checks the context's items and returns them validated.
func itemsOf(step *worker.TaskSequenceStep) ([]ValidatedItem, error) {
	raw, ok := step.ContextField("items")
	if !ok {
		return nil, worker.PermanentError(CodeMissingOrderItems, "the order has no items", nil)
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil, worker.PermanentError(CodeMissingOrderItems, "the order's items are not a list", nil)
	}
	if len(list) == 0 {
		return nil, worker.PermanentError(CodeEmptyOrderItems, "the order's item list is empty", nil)
	}
	items := make([]ValidatedItem, 0, len(list))
	for i, rawItem := range list {
		item, err := validateItem(i, rawItem)
		if err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	return items, nil
}

// itemError is a permanent error about the item at index.
func itemError(code string, index int, sku, format string, args ...any) error {
	return worker.PermanentError(code, fmt.Sprintf("item %d: ", index)+fmt.Sprintf(format, args...),
		map[string]any{"index": index, "sku": sku})
}

// validateItem checks one item: its shape, quantity, price and SKU. The
// line total is left for totalOf.
func validateItem(index int, raw json.RawMessage) (ValidatedItem, error) {
	var item struct {
		SKU      *string         `json:"sku"`
		Quantity json.RawMessage `json:"quantity"`
		Price    json.RawMessage `json:"price"`
	}
	if json.Unmarshal(raw, &item) != nil || item.SKU == nil || *item.SKU == "" ||
		isAbsent(item.Quantity) || isAbsent(item.Price) {
		return ValidatedItem{}, itemError(CodeInvalidOrderItem, index, "", "an item needs a sku, a quantity and a price")
	}
	sku := *item.SKU
	quantity, err := jsonnum.Int(item.Quantity)
	if err != nil || quantity.Sign() <= 0 || !quantity.IsInt64() {
		return ValidatedItem{}, itemError(CodeInvalidQuantity, index, sku, "quantity %s is not a whole number of at least 1", item.Quantity)
	}
	price, err := centsOf(item.Price)
	if err != nil || price.Sign() < 0 {
		return ValidatedItem{}, itemError(CodeInvalidPrice, index, sku, "price %s is not a non-negative whole number of cents", item.Price)
	}
	p, ok := lookupProduct(sku)
	if !ok {
		return ValidatedItem{}, itemError(CodeProductNotFound, index, sku, "product %q is not in the catalog", sku)
	}
	unit, err := narrow(price)
	if err != nil {
		return ValidatedItem{}, orderTooHigh(new(big.Int).Mul(price, quantity))
	}
	return ValidatedItem{SKU: sku, ProductName: p.name, Quantity: quantity.Int64(), UnitPrice: unit, Category: p.category}, nil
}

// isAbsent reports whether a field is missing or null.
func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// totalOf fills each item's line total and returns the order total,
// computed exactly so that no product can overflow before the limit check.
func totalOf(items []ValidatedItem) (Cents, error) {
	total := new(big.Int)
	lines := make([]*big.Int, len(items))
	for i, item := range items {
		lines[i] = new(big.Int).Mul(big.NewInt(item.Quantity), big.NewInt(int64(item.UnitPrice)))
		total.Add(total, lines[i])
	}
	if total.Cmp(big.NewInt(int64(MaxOrderTotal))) > 0 {
		return 0, orderTooHigh(total)
	}
	for i := range items {
		items[i].LineTotal = Cents(lines[i].Int64())
	}
	return Cents(total.Int64()), nil
}

// orderTooHigh is the permanent ORDER_TOTAL_TOO_HIGH error.
func orderTooHigh(total *big.Int) error {
	text := new(big.Rat).SetFrac(total, big.NewInt(100)).FloatString(2)
	return worker.PermanentError(CodeOrderTotalTooHigh,
		fmt.Sprintf("the order total %s exceeds %s", text, MaxOrderTotal),
		map[string]json.Number{"order_total": json.Number(text), "max_order_total": json.Number(MaxOrderTotal.String())})
}
