package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// decodeBody reads the JSON object of the request body into dst. An empty
// body leaves dst as it is when optional is set, and is an error
// otherwise. Unknown fields, trailing data and bodies over the size limit
// are errors; each says what is wrong.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			"the request body is larger than the limit of %d bytes", tooLarge.Limit)
	case err != nil:
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "reading the request body failed: %v", err)
	case len(bytes.TrimSpace(data)) == 0 && optional:
		return nil
	case len(bytes.TrimSpace(data)) == 0:
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "the request body is empty; it must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return invalidJSON(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "the request body has more data after its JSON object")
	}
	return nil
}

// invalidJSON describes why a body did not decode.
func invalidJSON(err error) error {
	var (
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		message  = strings.TrimPrefix(err.Error(), "json: ")
		notValid = "the request body is not valid JSON: "
	)
	switch {
	case errors.As(err, &syntax):
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "%s%s (at byte %d)", notValid, message, syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "%sit ends in the middle of a value", notValid)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "the request body must be a JSON object, not %s", jsonValueKind(typeErr.Value))
	case errors.As(err, &typeErr):
		return invalidRequest(typeErr.Field, fmt.Sprintf("must be %s, not %s", jsonKind(typeErr.Type), jsonValueKind(typeErr.Value)))
	case strings.HasPrefix(message, "unknown field "):
		field := strings.Trim(strings.TrimPrefix(message, "unknown field "), `"`)
		return invalidRequest(field, "is not a field of this request")
	}
	return errorf(http.StatusBadRequest, CodeInvalidRequest, "the request body does not decode: %s", message)
}

// jsonKind names the JSON kind a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// jsonValueKind turns UnmarshalTypeError.Value ("string", "number 1e99")
// into words.
func jsonValueKind(value string) string {
	kind, literal, found := strings.Cut(value, " ")
	switch {
	case found:
		return "the " + kind + " " + literal
	case kind == "array" || kind == "object":
		return "an " + kind
	case kind == "bool":
		return "a boolean"
	}
	return "a " + kind
}

// pathUUID reads the {uuid} wildcard of the path.
func pathUUID(r *http.Request) (uuid.UUID, error) {
	raw := r.PathValue("uuid")
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, invalidRequest("uuid", fmt.Sprintf("%q is not a UUID", raw))
	}
	return id, nil
}

// checkText rejects a parameter that PostgreSQL cannot compare with text:
// invalid UTF-8, or a NUL character.
func checkText(field, value string) error {
	if !utf8.ValidString(value) {
		return invalidRequest(field, "must be valid UTF-8")
	}
	if strings.ContainsRune(value, 0) {
		return invalidRequest(field, "must not contain the NUL character")
	}
	return nil
}

// queryInt reads an optional positive integer query parameter; absent is 0.
func queryInt(r *http.Request, name string) (int, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, invalidRequest(name, fmt.Sprintf("must be a positive integer, not %q", raw))
	}
	return n, nil
}

// queryBool reads an optional boolean query parameter; absent is false.
func queryBool(r *http.Request, name string) (bool, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(raw)
	if err != nil {
		return false, invalidRequest(name, fmt.Sprintf("must be true or false, not %q", raw))
	}
	return b, nil
}
