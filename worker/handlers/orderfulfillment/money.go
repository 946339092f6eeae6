package orderfulfillment

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/taskerops/tasker/worker/handlers/internal/jsonnum"
)

// Cents is an amount of money in integer cents. It encodes to JSON as a
// number with two decimals (20997 → 209.97) and decodes any JSON number that
// is a whole number of cents, exactly: no float64 is ever involved.
type Cents int64

var (
	// errSubCent is returned for an amount with a fraction of a cent.
	errSubCent = errors.New("not a whole number of cents")
	// errTooLarge is returned for an amount that does not fit in Cents.
	errTooLarge = errors.New("amount out of range")
)

// centsOf reads a JSON number as an exact count of cents, as a big.Int so
// that any amount, however large, can be compared before it is narrowed.
func centsOf(raw json.RawMessage) (*big.Int, error) {
	r, err := jsonnum.Rat(raw)
	if err != nil {
		return nil, err
	}
	r.Mul(r, big.NewRat(100, 1))
	if !r.IsInt() {
		return nil, fmt.Errorf("%w: %s", errSubCent, raw)
	}
	return new(big.Int).Set(r.Num()), nil
}

// narrow converts an exact cents amount to Cents.
func narrow(c *big.Int) (Cents, error) {
	if !c.IsInt64() {
		return 0, fmt.Errorf("%w: %s cents", errTooLarge, c)
	}
	return Cents(c.Int64()), nil
}

// String returns the amount in dollars with two decimals ("209.97").
func (c Cents) String() string {
	sign := ""
	u := uint64(c)
	if c < 0 {
		sign, u = "-", uint64(-(c+1))+1
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

// MarshalJSON encodes the amount as a JSON number with two decimals.
func (c Cents) MarshalJSON() ([]byte, error) {
	return []byte(c.String()), nil
}

// UnmarshalJSON decodes a JSON number that is a whole number of cents.
func (c *Cents) UnmarshalJSON(raw []byte) error {
	v, err := centsOf(raw)
	if err != nil {
		return fmt.Errorf("decoding an amount: %w", err)
	}
	n, err := narrow(v)
	if err != nil {
		return fmt.Errorf("decoding an amount: %w", err)
	}
	*c = n
	return nil
}

// Percent returns perMille thousandths of c (29 for 2.9 %), rounded to the
// cent half-up: exactly half a cent rounds away from zero.
func (c Cents) Percent(perMille int64) (Cents, error) {
	product := new(big.Int).Mul(big.NewInt(int64(c)), big.NewInt(perMille))
	half := big.NewInt(500)
	if product.Sign() < 0 {
		half.Neg(half)
	}
	product.Add(product, half)
	product.Quo(product, big.NewInt(1000)) // truncates towards zero
	return narrow(product)
}
