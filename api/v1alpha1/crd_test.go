package v1alpha1

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/taskerops/tasker/orchestration/template"
)

// taskTemplateCRD is the generated CustomResourceDefinition of TaskTemplate.
const taskTemplateCRD = "../../config/crd/bases/workflows.tasker.dev_tasktemplates.yaml"

// The API server and the engine check the same names with different code: the
// generated CRD's patterns and length limits, and template.Definition.Validate. A
// value one accepts and the other rejects would be a template that kubectl accepts
// and the controller reports invalid, or one the CLI registers that kubectl refuses.
func TestCRDAgreesWithEngine(t *testing.T) {
	t.Parallel()
	spec := loadSpecSchema(t)
	step := spec.Properties["steps"].Items.Schema

	t.Run("Names", func(t *testing.T) {
		t.Parallel()
		stepNames := []string{"linear_step_1", "_s", "s9", "1s", "S", "s-1", "s.1", strings.Repeat("s", 63), strings.Repeat("s", 64)}
		cases := []struct {
			schema apiextensionsv1.JSONSchemaProps
			field  string // as template.Problem.Field names it
			values []string
		}{
			{
				schema: spec.Properties["namespaceName"], field: "namespaceName",
				values: []string{"linear_workflow", "_x", "a1", "1a", "A", "a-b", "a.b", "", strings.Repeat("a", 40), strings.Repeat("a", 41)},
			},
			{
				// The empty name is left out: the CRD accepts it and the controller
				// replaces it with metadata.name before validating.
				schema: spec.Properties["name"], field: "name",
				values: []string{"mathematical_sequence", "1abc", "a.b-c_d", "_a", ".a", "-a", "A", "a b", strings.Repeat("a", 128), strings.Repeat("a", 129)},
			},
			{
				// Versions longer than the CRD's 128 characters are left out: the
				// engine sets no limit.
				schema: spec.Properties["version"], field: "version",
				values: []string{
					"1.0.0", "0.0.0", "10.20.30", "1.2.3-rc.1", "1.2.3-0", "1.2.3-0a", "1.2.3-x-y.z", "1.2.3+build.01",
					"1.2.3-rc.1+exp.sha.5114f85", "1.2.3--", "",
					"01.2.3", "1.02.3", "1.2.03", "1.2", "1", "v1.2.3", "1.2.3-", "1.2.3-01", "1.2.3-rc..1", "1.2.3+", "1.2.3+a..b",
					"1.2.3-rc_1", "1.2.3 ", " 1.2.3",
				},
			},
			{schema: step.Properties["name"], field: "steps[0].name", values: stepNames},
			{schema: *step.Properties["dependsOn"].Items.Schema, field: "steps[0].name", values: stepNames},
			{
				schema: step.Properties["handler"].Properties["callable"], field: "steps[0].handler.callable",
				values: []string{
					"linear_workflow.LinearStep1Handler", "a::b", "a/b/c", "A.B", "_x", "x9", "1a", "a.", ".a", "a..b",
					"a:b", "a:::b", "a.1b", "a-b", "", strings.Repeat("a", 255), strings.Repeat("a", 256),
				},
			},
		}
		for _, c := range cases {
			for _, value := range c.values {
				crd := schemaAccepts(t, c.schema, value)
				engine := engineAccepts(c.field, value)
				require.Equal(t, engine, crd, "%s %q: engine accepts=%v, CRD accepts=%v", c.field, value, engine, crd)
			}
		}
	})

	t.Run("Enums", func(t *testing.T) {
		t.Parallel()
		strategies := enumValues(t, spec.Properties["identityStrategy"])
		require.ElementsMatch(t, []string{"strict", "caller_provided", "always_unique"}, strategies)
		for _, v := range strategies {
			require.True(t, template.IdentityStrategy(v).IsValid(), v)
		}
		backoffs := enumValues(t, step.Properties["retry"].Properties["backoff"])
		require.ElementsMatch(t, []string{"exponential", "linear", "constant"}, backoffs)
		for _, v := range backoffs {
			require.True(t, template.BackoffKind(v).IsValid(), v)
		}
	})

	t.Run("IdentityStrategyDefault", func(t *testing.T) {
		t.Parallel()
		def := spec.Properties["identityStrategy"].Default
		require.NotNil(t, def)
		require.JSONEq(t, fmt.Sprintf("%q", template.DefaultIdentityStrategy), string(def.Raw))
	})
}

// loadSpecSchema returns the schema of spec in the generated TaskTemplate CRD.
func loadSpecSchema(t *testing.T) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	data, err := os.ReadFile(taskTemplateCRD)
	require.NoError(t, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(t, yaml.UnmarshalStrict(data, &crd))
	require.Len(t, crd.Spec.Versions, 1)
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
}

// schemaAccepts applies the string checks of an OpenAPI schema to value. Lengths
// are counted in characters, as the API server counts them.
func schemaAccepts(t *testing.T, s apiextensionsv1.JSONSchemaProps, value string) bool {
	t.Helper()
	require.NotEmpty(t, s.Pattern)
	require.NotNil(t, s.MaxLength)
	n := int64(len([]rune(value)))
	if n > *s.MaxLength || (s.MinLength != nil && n < *s.MinLength) {
		return false
	}
	return regexp.MustCompile(s.Pattern).MatchString(value)
}

// engineAccepts reports whether template.Definition.Validate accepts value in the
// named field of an otherwise valid definition.
func engineAccepts(field, value string) bool {
	def := template.Definition{
		NamespaceName: "payments",
		Name:          "refund",
		Version:       "1.0.0",
		Steps:         []template.Step{{Name: "check", Handler: template.Handler{Callable: "payments.CheckHandler"}}},
	}
	switch field {
	case "namespaceName":
		def.NamespaceName = value
	case "name":
		def.Name = value
	case "version":
		def.Version = value
	case "steps[0].name":
		def.Steps[0].Name = value
	case "steps[0].handler.callable":
		def.Steps[0].Handler.Callable = value
	default:
		panic("engineAccepts: unknown field " + field)
	}
	err := def.Validate()
	if err == nil {
		return true
	}
	var invalid *template.ValidationError
	if !errors.As(err, &invalid) {
		panic(fmt.Sprintf("engineAccepts: %v", err))
	}
	for _, p := range invalid.Problems {
		if p.Field == field {
			return false
		}
	}
	panic(fmt.Sprintf("engineAccepts: unexpected problems for %s %q: %v", field, value, err))
}

// enumValues returns the string values of a schema's enum.
func enumValues(t *testing.T, s apiextensionsv1.JSONSchemaProps) []string {
	t.Helper()
	values := make([]string, len(s.Enum))
	for i, raw := range s.Enum {
		require.NoError(t, json.Unmarshal(raw.Raw, &values[i]))
	}
	return values
}
