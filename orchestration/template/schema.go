package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// inputSchemaURL is the address the input schema is registered under while it is
// compiled; it only appears in references the schema makes to itself.
const inputSchemaURL = "tasker:///input-schema.json"

// Schema is a compiled input schema. It is safe for concurrent use.
type Schema struct {
	// compiled is nil for a schema that accepts any context.
	compiled *jsonschema.Schema
}

// Violation is one way a task context fails its template's input schema.
type Violation struct {
	// Path locates the offending value in the context as a JSON path rooted at "$",
	// such as "$.items[0].quantity". A missing required property is reported at the
	// object that lacks it.
	Path string `json:"path"`
	// Message says what is wrong, in words for people.
	Message string `json:"message"`
}

// String returns "path: message".
func (v Violation) String() string {
	return v.Path + ": " + v.Message
}

// CompileSchema compiles a JSON Schema for task contexts. The schema must be a JSON
// object; it follows draft 2020-12 unless its "$schema" names another draft, and it
// is checked against its metaschema. References must stay inside the schema: nothing
// is loaded from files or the network. "format" is an annotation, as the drafts
// specify, not an assertion. A nil, blank or JSON null raw yields a schema that
// accepts any context.
func CompileSchema(raw json.RawMessage) (*Schema, error) {
	s, err := compileSchema(raw)
	if err != nil {
		return nil, fmt.Errorf("input schema %w", err)
	}
	return s, nil
}

// compileSchema is CompileSchema with errors that read after a field name, such as
// "must be a JSON object, got array".
func compileSchema(raw json.RawMessage) (*Schema, error) {
	if isUnsetRaw(raw) {
		return &Schema{}, nil
	}
	doc, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(inlineOnlyLoader{})
	if err := c.AddResource(inputSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("is not a valid JSON Schema: %w", err)
	}
	compiled, err := c.Compile(inputSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("is not a valid JSON Schema: %s", describeCompileError(doc, err))
	}
	return &Schema{compiled: compiled}, nil
}

// describeCompileError explains why a schema did not compile. A schema that breaks
// its metaschema is explained violation by violation, with JSON paths into the schema
// document itself.
func describeCompileError(doc any, err error) string {
	if unloadable, ok := errors.AsType[*jsonschema.LoadURLError](err); ok {
		return fmt.Sprintf("cannot resolve reference to %q: %v", unloadable.URL, unloadable.Err)
	}
	invalid, ok := errors.AsType[*jsonschema.SchemaValidationError](err)
	if !ok {
		return err.Error()
	}
	cause, ok := errors.AsType[*jsonschema.ValidationError](invalid.Err)
	if !ok {
		return err.Error()
	}
	found := violations(doc, cause)
	parts := make([]string, len(found))
	for i, v := range found {
		parts[i] = v.String()
	}
	return strings.Join(parts, "; ")
}

// inlineOnlyLoader refuses to load any document, so a schema can only refer to
// itself and to the standard metaschemas, which the compiler embeds.
type inlineOnlyLoader struct{}

// Load implements jsonschema.URLLoader by refusing.
func (inlineOnlyLoader) Load(string) (any, error) {
	return nil, errors.New("external references are not supported; define shared parts under $defs")
}

// Validate checks a task context against the schema and returns every violation,
// sorted by path and then message, or nil when the context is valid. A context that
// is not exactly one JSON value (an empty one included) yields a single violation
// at "$". Numbers are compared exactly, however large.
func (s *Schema) Validate(context json.RawMessage) []Violation {
	if len(bytes.TrimSpace(context)) == 0 {
		return []Violation{{Path: "$", Message: "context must be valid JSON, got nothing"}}
	}
	instance, err := decodeJSON(context)
	if err != nil {
		return []Violation{{Path: "$", Message: "context must be valid JSON: " + err.Error()}}
	}
	if s == nil || s.compiled == nil {
		return nil
	}
	err = s.compiled.Validate(instance)
	if err == nil {
		return nil
	}
	failed, ok := errors.AsType[*jsonschema.ValidationError](err)
	if !ok {
		return []Violation{{Path: "$", Message: err.Error()}}
	}
	return violations(instance, failed)
}

// violations turns the deepest causes of a validation error into sorted, distinct
// violations with paths resolved against instance.
func violations(instance any, failed *jsonschema.ValidationError) []Violation {
	causes := leaves(failed, nil)
	found := make([]Violation, 0, len(causes))
	for _, leaf := range causes {
		found = append(found, Violation{
			Path:    jsonPath(instance, leaf.InstanceLocation),
			Message: describe(leaf.ErrorKind),
		})
	}
	slices.SortFunc(found, cmpViolation)
	return slices.Compact(found)
}

// cmpViolation orders violations by path, then message.
func cmpViolation(a, b Violation) int {
	if c := strings.Compare(a.Path, b.Path); c != 0 {
		return c
	}
	return strings.Compare(a.Message, b.Message)
}

// leaves appends the errors of the tree rooted at e that have no causes.
func leaves(e *jsonschema.ValidationError, found []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return append(found, e)
	}
	for _, cause := range e.Causes {
		found = leaves(cause, found)
	}
	return found
}

// decodeJSON decodes exactly one JSON value, keeping numbers exact as json.Number as
// the jsonschema package requires.
func decodeJSON(raw []byte) (any, error) {
	return jsonschema.UnmarshalJSON(bytes.NewReader(raw))
}
