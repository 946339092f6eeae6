// Package jsonb checks that a JSON document can be stored in a PostgreSQL
// jsonb column. Go's decoder is more lenient than jsonb: it accepts invalid
// UTF-8, unpaired UTF-16 surrogate escapes and the NUL character, and
// numbers of any size, all of which jsonb refuses. Checking first turns a
// database error deep in a transaction into a clear error that names where
// the problem is.
package jsonb

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PostgreSQL's numeric (which jsonb numbers are) holds at most this many
// digits before and after the decimal point.
const (
	maxIntegerDigits  = 131072
	maxFractionDigits = 16383
)

// Error says where a document cannot be stored, and why.
type Error struct {
	// Path is the JSON path of the problem: "$" for the whole document.
	Path string
	// Message says what is wrong there.
	Message string
}

func (e *Error) Error() string { return e.Path + ": " + e.Message }

// Check returns nil when raw is valid JSON that jsonb can store, or an
// *Error naming the JSON path ($.a.b[0]) of the first problem.
//
// Most documents are plainly storable: valid JSON without escapes and with
// only short numbers. Those are recognized by one pass over the bytes
// (plainlyStorable), without decoding; workers check every result they
// store, and decoding each into Go values cost more than the rest of the
// check. Anything else is decoded and searched for the problem.
func Check(raw []byte) error {
	if !utf8.Valid(raw) {
		return &Error{Path: "$", Message: "not valid UTF-8"}
	}
	if plainlyStorable(raw) {
		return nil
	}
	return checkDecoded(raw)
}

// plainlyStorable reports whether raw, valid UTF-8, is one valid JSON
// value that needs no closer look: no backslash (so no escape, hence no NUL
// character and no surrogate; a raw control character is not valid JSON),
// no number with an exponent, and no run of more than maxFractionDigits
// digits (so every number fits numeric). False means "look closer", not
// "cannot be stored".
func plainlyStorable(raw []byte) bool {
	if bytes.IndexByte(raw, '\\') >= 0 || !json.Valid(raw) {
		return false
	}
	inString := false
	digits := 0
	var prev byte
	for _, c := range raw {
		switch {
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
			digits = 0
		case c >= '0' && c <= '9':
			digits++
			if digits > maxFractionDigits {
				return false
			}
		case (c == 'e' || c == 'E') && (prev == '.' || (prev >= '0' && prev <= '9')):
			return false // an exponent: true and false have no digit before their e
		default:
			digits = 0
		}
		prev = c
	}
	return true
}

// checkDecoded is Check for raw (valid UTF-8) that plainlyStorable did not
// accept: it decodes raw and finds the first problem.
func checkDecoded(raw []byte) error {
	if msg := badEscape(raw); msg != "" {
		return &Error{Path: "$", Message: msg}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return &Error{Path: "$", Message: "not valid JSON: " + err.Error()}
	}
	if dec.More() {
		return &Error{Path: "$", Message: "not valid JSON: more than one value"}
	}
	if path, msg := find(v, "$"); msg != "" {
		return &Error{Path: path, Message: msg}
	}
	return nil
}

// badEscape reports an unpaired UTF-16 surrogate escape (\ud800 alone),
// which jsonb refuses and Go's decoder silently replaces.
func badEscape(raw []byte) string {
	for i := 0; i+6 <= len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // skip the escaped character, e.g. the second \ of \\u
			continue
		}
		code, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		if err != nil {
			return "" // not valid JSON; the decoder reports it
		}
		switch {
		case code >= 0xD800 && code <= 0xDBFF:
			if i+12 > len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' || !isLowSurrogate(raw[i+8:i+12]) {
				return "has an unpaired UTF-16 surrogate escape (\\u" + string(raw[i+2:i+6]) + "), which PostgreSQL cannot store"
			}
			i += 11
		case code >= 0xDC00 && code <= 0xDFFF:
			return "has an unpaired UTF-16 surrogate escape (\\u" + string(raw[i+2:i+6]) + "), which PostgreSQL cannot store"
		default:
			i += 5
		}
	}
	return ""
}

func isLowSurrogate(hex []byte) bool {
	code, err := strconv.ParseUint(string(hex), 16, 16)
	return err == nil && code >= 0xDC00 && code <= 0xDFFF
}

// find returns the path of the first value in v that jsonb cannot store,
// with the reason; "" when there is none.
func find(v any, path string) (string, string) {
	switch v := v.(type) {
	case string:
		if strings.ContainsRune(v, 0) {
			return path, "contains the NUL character (\\u0000), which PostgreSQL cannot store"
		}
	case json.Number:
		return path, numberProblem(string(v))
	case []any:
		for i, item := range v {
			if p, msg := find(item, path+"["+strconv.Itoa(i)+"]"); msg != "" {
				return p, msg
			}
		}
	case map[string]any:
		for key, item := range v {
			if strings.ContainsRune(key, 0) {
				return path + "." + strconv.Quote(key), "contains the NUL character (\\u0000), which PostgreSQL cannot store"
			}
			if p, msg := find(item, path+"."+key); msg != "" {
				return p, msg
			}
		}
	}
	return path, ""
}

// numberProblem reports a number outside PostgreSQL numeric's range.
func numberProblem(n string) string {
	mantissa, exp := n, 0
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		e, err := strconv.Atoi(n[i+1:])
		if err != nil {
			return "is a number whose exponent is out of range"
		}
		mantissa, exp = n[:i], e
	}
	mantissa = strings.TrimLeft(mantissa, "-")
	intPart, fracPart, _ := strings.Cut(mantissa, ".")
	intDigits := len(strings.TrimLeft(intPart, "0")) + exp
	fracDigits := len(fracPart) - exp
	if intDigits > maxIntegerDigits || fracDigits > maxFractionDigits {
		return "is a number outside PostgreSQL's numeric range"
	}
	return ""
}
