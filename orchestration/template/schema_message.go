package template

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// identifierKey matches object keys that can follow a dot in a JSON path.
var identifierKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// englishPrinter renders the messages of error kinds this file does not phrase itself.
var englishPrinter = message.NewPrinter(language.English)

// jsonPath renders an instance location as a JSON path rooted at "$". It walks the
// instance to tell array indexes ("[0]") from object keys (".key", or ["key"] when
// the key is not an identifier).
func jsonPath(instance any, location []string) string {
	var b strings.Builder
	b.WriteString("$")
	current := instance
	for _, token := range location {
		switch value := current.(type) {
		case []any:
			if i, err := strconv.Atoi(token); err == nil && i >= 0 && i < len(value) {
				fmt.Fprintf(&b, "[%d]", i)
				current = value[i]
				continue
			}
		case map[string]any:
			current = value[token]
		default:
			current = nil
		}
		if identifierKey.MatchString(token) {
			b.WriteString("." + token)
		} else {
			b.WriteString("[" + strconv.Quote(token) + "]")
		}
	}
	return b.String()
}

// describe phrases one validation failure for people.
func describe(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("must be %s, got %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.Required:
		return "missing required " + plural(len(k.Missing), "property", "properties") + " " + quoteAll(k.Missing)
	case *kind.DependentRequired:
		return fmt.Sprintf("property %q requires %s", k.Prop, quoteAll(k.Missing))
	case *kind.Dependency:
		return fmt.Sprintf("property %q requires %s", k.Prop, quoteAll(k.Missing))
	case *kind.AdditionalProperties:
		names := slices.Sorted(slices.Values(k.Properties))
		return plural(len(names), "property", "properties") + " " + quoteAll(names) + " not allowed"
	case *kind.Enum:
		return "must be one of " + jsonList(k.Want)
	case *kind.Const:
		return "must be " + jsonList([]any{k.Want})
	case *kind.OneOf:
		if len(k.Subschemas) == 2 {
			return fmt.Sprintf("must match exactly one schema in \"oneOf\", but subschemas %d and %d both match",
				k.Subschemas[0], k.Subschemas[1])
		}
	case *kind.FalseSchema:
		return "no value is allowed here"
	case *kind.Not:
		return "must not match the schema in \"not\""
	case *kind.Format:
		return fmt.Sprintf("must be a valid %s: %v", k.Want, k.Err)
	case *kind.UniqueItems:
		return fmt.Sprintf("must have unique items, but items %d and %d are equal", k.Duplicates[0], k.Duplicates[1])
	}
	if msg, ok := describeBound(k); ok {
		return msg
	}
	return k.LocalizedString(englishPrinter)
}

// describeBound phrases failures of numeric, length and size bounds.
func describeBound(k jsonschema.ErrorKind) (string, bool) {
	switch k := k.(type) {
	case *kind.Minimum:
		return "must be >= " + ratString(k.Want), true
	case *kind.Maximum:
		return "must be <= " + ratString(k.Want), true
	case *kind.ExclusiveMinimum:
		return "must be > " + ratString(k.Want), true
	case *kind.ExclusiveMaximum:
		return "must be < " + ratString(k.Want), true
	case *kind.MultipleOf:
		return "must be multiple of " + ratString(k.Want), true
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters long, got %d", k.Want, k.Got), true
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long, got %d", k.Want, k.Got), true
	case *kind.Pattern:
		return fmt.Sprintf("must match pattern %q", k.Want), true
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items, got %d", k.Want, k.Got), true
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items, got %d", k.Want, k.Got), true
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d properties, got %d", k.Want, k.Got), true
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %d properties, got %d", k.Want, k.Got), true
	}
	return "", false
}

// ratString prints an exact number as an integer when it is one, else as a decimal.
func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// jsonList renders values as comma-separated JSON.
func jsonList(values []any) string {
	parts := make([]string, len(values))
	for i, v := range values {
		encoded, err := json.Marshal(v)
		if err != nil {
			encoded = []byte(fmt.Sprint(v))
		}
		parts[i] = string(encoded)
	}
	return strings.Join(parts, ", ")
}

// plural picks the singular or plural form for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
