// Package jsonnum reads JSON number literals exactly, as math/big values,
// so that handlers never lose precision to float64.
//
// Only number tokens are accepted: a JSON string that happens to hold digits
// ("6") is not a number. Literals with a fraction or an exponent (6.0, 1e3)
// are read exactly; the exponent is bounded so that a tiny literal such as
// 1e999999999 cannot make the reader allocate gigabytes.
package jsonnum

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// MaxExponent bounds the magnitude of a literal's exponent (the 30 in 1e30).
const MaxExponent = 10000

var (
	// ErrNotNumber is returned for anything but a JSON number token.
	ErrNotNumber = errors.New("not a JSON number")
	// ErrNotInteger is returned by Int for a number with a fractional part.
	ErrNotInteger = errors.New("not an integer")
)

// Rat reads raw, one JSON value, as an exact rational number.
func Rat(raw json.RawMessage) (*big.Rat, error) {
	text := string(bytes.TrimSpace(raw))
	if !isNumberToken(text) {
		return nil, fmt.Errorf("%w: %.40q", ErrNotNumber, text)
	}
	if err := checkExponent(text); err != nil {
		return nil, err
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return nil, fmt.Errorf("%w: %.40q", ErrNotNumber, text)
	}
	return r, nil
}

// Int reads raw, one JSON value, as an exact integer. Integral literals
// written with a fraction or an exponent (6.0, 1e30) are accepted.
func Int(raw json.RawMessage) (*big.Int, error) {
	text := string(bytes.TrimSpace(raw))
	if isNumberToken(text) && !strings.ContainsAny(text, ".eE") {
		if n, ok := new(big.Int).SetString(text, 10); ok {
			return n, nil
		}
	}
	r, err := Rat(raw)
	if err != nil {
		return nil, err
	}
	if !r.IsInt() {
		return nil, fmt.Errorf("%w: %s", ErrNotInteger, r.FloatString(6))
	}
	return new(big.Int).Set(r.Num()), nil
}

// isNumberToken reports whether text is a JSON number literal.
func isNumberToken(text string) bool {
	if text == "" || (text[0] != '-' && (text[0] < '0' || text[0] > '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal([]byte(text), &n) == nil
}

// checkExponent refuses literals whose exponent exceeds MaxExponent.
func checkExponent(text string) error {
	i := strings.IndexAny(text, "eE")
	if i < 0 {
		return nil
	}
	exp, err := strconv.Atoi(strings.TrimPrefix(text[i+1:], "+"))
	if err != nil || exp > MaxExponent || exp < -MaxExponent {
		return fmt.Errorf("%w: the exponent of %.40q is out of range ±%d", ErrNotNumber, text, MaxExponent)
	}
	return nil
}
