package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// unmarshalerType is json.Unmarshaler; types that implement it decode
// themselves and are not checked field by field.
var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodeEnvelope decodes raw, which must hold a JSON object, into v without
// rejecting unknown fields.
func decodeEnvelope(raw json.RawMessage, v any) error {
	value, err := decodeJSON(raw)
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, ok := value.(map[string]any); !ok {
		return fmt.Errorf("a manifest must be an object, got %s", jsonKind(value))
	}
	return json.Unmarshal(raw, v)
}

// decodeStrict decodes the JSON object raw into v, a pointer to a struct, and
// fails on any field that v's type does not declare (matched exactly, unlike
// encoding/json, which ignores case) and on any value of the wrong JSON type.
// The error names every such field by its path under prefix, such as
// "spec.steps[1].retry.maxAttempt: unknown field".
func decodeStrict(raw json.RawMessage, v any, prefix string) error {
	value, err := decodeJSON(raw)
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	var c fieldChecker
	c.check(value, reflect.TypeOf(v).Elem(), prefix)
	if len(c.problems) > 0 {
		return errors.New(strings.Join(c.problems, "; "))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", orRoot(prefix), err)
	}
	return nil
}

// fieldChecker walks a decoded JSON value alongside the Go type it is meant
// for and collects the paths of unknown fields and mistyped values.
type fieldChecker struct {
	problems []string
}

// addf records a problem at path.
func (c *fieldChecker) addf(path, format string, args ...any) {
	c.problems = append(c.problems, orRoot(path)+": "+fmt.Sprintf(format, args...))
}

// check compares value with type t. JSON null is accepted everywhere, as
// encoding/json accepts it.
func (c *fieldChecker) check(value any, t reflect.Type, path string) {
	if value == nil || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		c.check(value, t.Elem(), path)
	case reflect.Struct:
		c.checkObject(value, t, path)
	case reflect.Slice:
		c.checkArray(value, t, path)
	case reflect.String:
		c.checkKind(value, "string", path)
	case reflect.Bool:
		c.checkKind(value, "boolean", path)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.checkInteger(value, path)
	default:
		// Other kinds do not occur in the decoded types.
	}
}

// checkObject checks a JSON object against struct type t, key by key in
// sorted order.
func (c *fieldChecker) checkObject(value any, t reflect.Type, path string) {
	object, ok := value.(map[string]any)
	if !ok {
		c.addf(path, "must be an object, got %s", jsonKind(value))
		return
	}
	fields := jsonFields(t)
	keys := make([]string, 0, len(object))
	for key := range object {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		field, known := fields[key]
		if !known {
			c.addf(joinPath(path, key), "unknown field")
			continue
		}
		c.check(object[key], field, joinPath(path, key))
	}
}

// checkArray checks a JSON array against slice type t, element by element.
func (c *fieldChecker) checkArray(value any, t reflect.Type, path string) {
	array, ok := value.([]any)
	if !ok {
		c.addf(path, "must be an array, got %s", jsonKind(value))
		return
	}
	for i, element := range array {
		c.check(element, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
	}
}

// checkKind checks that value is of the JSON kind want.
func (c *fieldChecker) checkKind(value any, want, path string) {
	if got := jsonKind(value); got != want {
		c.addf(path, "must be a %s, got %s", want, got)
	}
}

// checkInteger checks that value is a JSON number without a fraction.
func (c *fieldChecker) checkInteger(value any, path string) {
	n, ok := value.(json.Number)
	if !ok {
		c.addf(path, "must be an integer, got %s", jsonKind(value))
		return
	}
	if _, err := n.Int64(); err != nil {
		c.addf(path, "must be an integer, got %s", n)
	}
}

// jsonFields maps the JSON names of struct type t's exported fields to their
// types. Fields tagged "-" are left out.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for field := range t.Fields() {
		if !field.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = field.Name
		}
		fields[name] = field.Type
	}
	return fields
}

// joinPath appends an object key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// orRoot names the empty path, the document itself, for messages.
func orRoot(path string) string {
	if path == "" {
		return "document"
	}
	return path
}
