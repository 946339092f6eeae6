package orderfulfillment

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/taskerops/tasker/worker"
)

// Error codes of process_payment. GATEWAY_UNAVAILABLE is retryable; the
// others are permanent.
const (
	CodeMissingPaymentInfo   = "MISSING_PAYMENT_INFO"
	CodeMissingPaymentMethod = "MISSING_PAYMENT_METHOD"
	CodeInvalidPaymentMethod = "INVALID_PAYMENT_METHOD"
	CodeMissingPaymentToken  = "MISSING_PAYMENT_TOKEN"
	CodePaymentDeclined      = "PAYMENT_DECLINED"
	CodeGatewayUnavailable   = "GATEWAY_UNAVAILABLE"
)

// Test tokens of the simulated gateway.
const (
	// DeclineTokenPrefix starts tokens the gateway always declines.
	DeclineTokenPrefix = "tok_decline"
	// FlakyTokenPrefix starts tokens the gateway fails on the first attempt
	// and accepts on the next.
	FlakyTokenPrefix = "tok_flaky"
)

// GatewayFeePerMille is the gateway's fee: 2.9 % of the amount charged,
// rounded to the cent half-up.
const GatewayFeePerMille = 29

// Payment is the result of process_payment.
type Payment struct {
	PaymentID         string    `json:"payment_id"`
	TransactionID     string    `json:"transaction_id"`
	AmountCharged     Cents     `json:"amount_charged"`
	PaymentMethodUsed string    `json:"payment_method_used"`
	GatewayFee        Cents     `json:"gateway_fee"`
	PaymentStatus     string    `json:"payment_status"`
	ReservationID     string    `json:"reservation_id"`
	ProcessedAt       time.Time `json:"processed_at"`
}

// processPayment is the handler of process_payment: it charges the order
// total to the context's payment method through a simulated gateway.
type processPayment struct {
	now func() time.Time
}

// Call implements worker.StepHandler.
func (h *processPayment) Call(_ context.Context, step *worker.TaskSequenceStep) (worker.StepResult, error) {
	method, token, err := paymentOf(step)
	if err != nil {
		return worker.StepResult{}, err
	}
	order, err := validated(step)
	if err != nil {
		return worker.StepResult{}, err
	}
	var reservation Reservation
	if err := dependency(step, ReserveInventory, &reservation); err != nil {
		return worker.StepResult{}, err
	}
	if err := charge(step, token); err != nil {
		return worker.StepResult{}, err
	}
	fee, err := order.OrderTotal.Percent(GatewayFeePerMille)
	if err != nil {
		return worker.StepResult{}, worker.PermanentError(CodeInvalidDependency, err.Error(), nil)
	}
	return worker.StepResult{Result: Payment{
		PaymentID:         newID(step, "PAY-", "payment"),
		TransactionID:     newID(step, "TXN-", "transaction"),
		AmountCharged:     order.OrderTotal,
		PaymentMethodUsed: method,
		GatewayFee:        fee,
		PaymentStatus:     "completed",
		ReservationID:     reservation.ReservationID,
		ProcessedAt:       h.now().UTC(),
	}}, nil
}

// paymentOf checks the context's payment and returns its method and token.
func paymentOf(step *worker.TaskSequenceStep) (method, token string, err error) {
	raw, ok := step.ContextField("payment")
	var payment map[string]json.RawMessage
	if !ok || json.Unmarshal(raw, &payment) != nil {
		return "", "", worker.PermanentError(CodeMissingPaymentInfo, "the order has no payment object", nil)
	}
	if json.Unmarshal(payment["method"], &method) != nil || method == "" {
		return "", "", worker.PermanentError(CodeMissingPaymentMethod, "the payment has no method", nil)
	}
	if !validPaymentMethod(method) {
		return "", "", worker.PermanentError(CodeInvalidPaymentMethod,
			fmt.Sprintf("payment method %q is not one of credit_card, debit_card, paypal", method),
			map[string]string{"method": method})
	}
	if json.Unmarshal(payment["token"], &token) != nil || strings.TrimSpace(token) == "" {
		return "", "", worker.PermanentError(CodeMissingPaymentToken, "the payment has no token", nil)
	}
	return method, token, nil
}

// charge is the simulated gateway: tok_decline… is declined for good,
// tok_flaky… is unavailable on the first attempt, anything else succeeds.
func charge(step *worker.TaskSequenceStep, token string) error {
	switch {
	case strings.HasPrefix(token, DeclineTokenPrefix):
		return worker.PermanentError(CodePaymentDeclined, "the payment gateway declined the payment", nil)
	case strings.HasPrefix(token, FlakyTokenPrefix) && step.Step.Attempt <= 1:
		return worker.RetryableError(CodeGatewayUnavailable,
			fmt.Sprintf("the payment gateway is unavailable (attempt %d)", step.Step.Attempt), 0)
	}
	return nil
}
