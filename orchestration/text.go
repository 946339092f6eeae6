package orchestration

import (
	"strings"
	"unicode/utf8"
)

// checkText rejects a request string that PostgreSQL cannot store in a
// text column: invalid UTF-8, or a NUL character.
func checkText(field, value string) error {
	if !utf8.ValidString(value) {
		return &InvalidRequestError{Field: field, Message: "must be valid UTF-8"}
	}
	if strings.ContainsRune(value, 0) {
		return &InvalidRequestError{Field: field, Message: "must not contain the NUL character"}
	}
	return nil
}
