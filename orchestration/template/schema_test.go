package template

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const evenNumberSchema = `{"type":"object","required":["even_number"],
	"properties":{"even_number":{"type":"integer","minimum":2,"multipleOf":2}}}`

const orderSchema = `{"type":"object","properties":{"items":{"type":"array","items":{
	"type":"object","required":["sku"],"properties":{
		"sku":{"type":"string","minLength":1},
		"quantity":{"type":"integer","exclusiveMinimum":0}}}}}}`

// mustCompile compiles a schema that the test expects to be valid.
func mustCompile(t *testing.T, raw string) *Schema {
	t.Helper()
	s, err := CompileSchema(json.RawMessage(raw))
	require.NoError(t, err)
	return s
}

func TestSchemaValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		schema  string
		context string
		want    []Violation
	}{
		{"even number is valid", evenNumberSchema, `{"even_number": 6}`, nil},
		{
			"odd number names its path", evenNumberSchema, `{"even_number": 7}`,
			[]Violation{{Path: "$.even_number", Message: "must be multiple of 2"}},
		},
		{
			"below the minimum", evenNumberSchema, `{"even_number": 0}`,
			[]Violation{{Path: "$.even_number", Message: "must be >= 2"}},
		},
		{
			"missing property is reported at its parent", evenNumberSchema, `{}`,
			[]Violation{{Path: "$", Message: `missing required property "even_number"`}},
		},
		{"huge even integer is exact", evenNumberSchema, `{"even_number": 10000000000000000000000000000000000000000}`, nil},
		{
			"huge odd integer is exact", evenNumberSchema, `{"even_number": 10000000000000000000000000000000000000001}`,
			[]Violation{{Path: "$.even_number", Message: "must be multiple of 2"}},
		},
		{
			"fraction is not an integer", evenNumberSchema, `{"even_number": 2.5}`,
			[]Violation{{Path: "$.even_number", Message: "must be integer, got number"}},
		},
		{
			"wrong root type", evenNumberSchema, `[2]`,
			[]Violation{{Path: "$", Message: "must be object, got array"}},
		},
		{
			"nested array items use indexes", orderSchema,
			`{"items":[{"sku":"a","quantity":1},{"sku":"b","quantity":0},{"quantity":"3"}]}`,
			[]Violation{
				{Path: "$.items[1].quantity", Message: "must be > 0"},
				{Path: "$.items[2]", Message: `missing required property "sku"`},
				{Path: "$.items[2].quantity", Message: "must be integer, got string"},
			},
		},
		{
			"keys that are not identifiers are quoted", `{"properties":{"a b":{"type":"string"},"0":{"type":"string"}}}`,
			`{"a b": 1, "0": true}`,
			[]Violation{
				{Path: `$["0"]`, Message: "must be string, got boolean"},
				{Path: `$["a b"]`, Message: "must be string, got number"},
			},
		},
		{
			"numeric keys of objects are keys, not indexes", `{"properties":{"x":{"additionalProperties":{"type":"string"}}}}`,
			`{"x": {"1": 2}}`,
			[]Violation{{Path: `$.x["1"]`, Message: "must be string, got number"}},
		},
		{
			"additional properties are named", `{"additionalProperties": false}`, `{"b": 1, "a": 2}`,
			[]Violation{{Path: "$", Message: `properties "a", "b" not allowed`}},
		},
		{
			"enum lists the choices", `{"enum": ["red", 1]}`, `"blue"`,
			[]Violation{{Path: "$", Message: `must be one of "red", 1`}},
		},
		{
			"every failed anyOf branch is a leaf", `{"anyOf":[{"type":"string"},{"type":"integer","minimum":5}]}`, `3`,
			[]Violation{{Path: "$", Message: "must be >= 5"}, {Path: "$", Message: "must be string, got number"}},
		},
		{"empty schema accepts anything", ``, `{"anything": [1, "x"]}`, nil},
		{
			"invalid context JSON", evenNumberSchema, `{"even_number": `,
			[]Violation{{Path: "$", Message: "context must be valid JSON: unexpected EOF"}},
		},
		{
			"trailing data is invalid JSON", ``, `{} 1`,
			[]Violation{{Path: "$", Message: "context must be valid JSON: invalid character after top-level value"}},
		},
		{
			"empty context is invalid JSON", ``, ` `,
			[]Violation{{Path: "$", Message: "context must be valid JSON, got nothing"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustCompile(t, tc.schema)
			require.Equal(t, tc.want, s.Validate(json.RawMessage(tc.context)))
		})
	}
}

func TestCompileSchema(t *testing.T) {
	t.Parallel()

	t.Run("explains a schema that breaks the metaschema", func(t *testing.T) {
		t.Parallel()
		_, err := CompileSchema(json.RawMessage(`{"type": 5}`))
		require.EqualError(t, err, `input schema is not a valid JSON Schema: $.type: must be array, got number; `+
			`$.type: must be one of "array", "boolean", "integer", "null", "number", "object", "string"`)
	})

	t.Run("requires an object", func(t *testing.T) {
		t.Parallel()
		_, err := CompileSchema(json.RawMessage(`"string"`))
		require.EqualError(t, err, "input schema must be a JSON object, got string")
	})

	t.Run("never loads files", func(t *testing.T) {
		t.Parallel()
		_, err := CompileSchema(json.RawMessage(`{"$ref": "file:///etc/passwd"}`))
		require.ErrorContains(t, err, `cannot resolve reference to "file:///etc/passwd"`)
	})

	t.Run("follows the draft named by $schema", func(t *testing.T) {
		t.Parallel()
		// In draft-04 exclusiveMinimum is a boolean modifier of minimum.
		s := mustCompile(t, `{"$schema":"http://json-schema.org/draft-04/schema#","minimum":1,"exclusiveMinimum":true}`)
		require.Equal(t, []Violation{{Path: "$", Message: "must be > 1"}}, s.Validate(json.RawMessage(`1`)))
	})

	t.Run("nil schema accepts any valid JSON", func(t *testing.T) {
		t.Parallel()
		var s *Schema
		require.Nil(t, s.Validate(json.RawMessage(`[]`)))
		require.NotNil(t, s.Validate(json.RawMessage(`[`)))
	})
}

func TestSchemaValidate_Concurrent(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, evenNumberSchema)
	results := make([][]Violation, 16)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			// 11, 111, 1111, ...: odd and above the minimum, so exactly one violation.
			context := `{"even_number": ` + strings.Repeat("1", i+2) + `}`
			for range 50 {
				results[i] = s.Validate(json.RawMessage(context))
			}
		})
	}
	wg.Wait()
	for _, got := range results {
		require.Equal(t, []Violation{{Path: "$.even_number", Message: "must be multiple of 2"}}, got)
	}
}

func TestSchemaValidate_Messages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		schema  string
		context string
		want    string
	}{
		{`{"maximum": 3}`, `4`, "must be <= 3"},
		{`{"exclusiveMaximum": 3}`, `3`, "must be < 3"},
		{`{"multipleOf": 0.5}`, `0.7`, "must be multiple of 0.5"},
		{`{"minLength": 2}`, `"a"`, "must be at least 2 characters long, got 1"},
		{`{"maxLength": 2}`, `"abc"`, "must be at most 2 characters long, got 3"},
		{`{"pattern": "^a+$"}`, `"b"`, `must match pattern "^a+$"`},
		{`{"minItems": 2}`, `[1]`, "must have at least 2 items, got 1"},
		{`{"maxItems": 1}`, `[1, 2]`, "must have at most 1 items, got 2"},
		{`{"minProperties": 1}`, `{}`, "must have at least 1 properties, got 0"},
		{`{"maxProperties": 0}`, `{"a": 1}`, "must have at most 0 properties, got 1"},
		{`{"const": {"a": 1}}`, `{"a": 2}`, `must be {"a":1}`},
		{`{"not": {"type": "string"}}`, `"x"`, `must not match the schema in "not"`},
		{`{"uniqueItems": true}`, `[1, 2, 1]`, "must have unique items, but items 0 and 2 are equal"},
		{`{"dependentRequired": {"a": ["b"]}}`, `{"a": 1}`, `property "a" requires "b"`},
		{
			`{"oneOf": [{"type": "integer"}, {"minimum": 0}]}`, `1`,
			`must match exactly one schema in "oneOf", but subschemas 0 and 1 both match`,
		},
		{
			`{"$schema": "http://json-schema.org/draft-07/schema#", "format": "email"}`, `"nope"`,
			"must be a valid email: missing @",
		},
		{`{"properties": {"a": false}}`, `{"a": 1}`, "no value is allowed here"},
		{`{"contains": {"type": "string"}, "maxContains": 1}`, `["a", "b"]`, "max 1 items required to match contains schema"}, // library wording
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			got := mustCompile(t, tc.schema).Validate(json.RawMessage(tc.context))
			require.Len(t, got, 1, "violations: %v", got)
			require.Contains(t, got[0].Message, tc.want)
		})
	}
}
