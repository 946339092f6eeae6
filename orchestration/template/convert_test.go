package template

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// update rewrites the golden files: go test ./orchestration/template -run Convert -update.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// convertFile converts a classic template from testdata.
func convertFile(t *testing.T, name string) Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	m, err := ConvertClassic(data)
	require.NoError(t, err)
	return m
}

func TestConvertClassic_Golden(t *testing.T) {
	t.Parallel()
	m := convertFile(t, "classic_order_fulfillment.yaml")
	got, err := m.YAML()
	require.NoError(t, err)
	golden := filepath.Join("testdata", "classic_order_fulfillment.tasktemplate.yaml")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o600))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	again, err := ParseManifests(got)
	require.NoError(t, err)
	require.Equal(t, []Manifest{m}, again, "the converted manifest reads back unchanged")
	require.NoError(t, again[0].Definition().Validate())
}

func TestConvertClassic_RailsStepTemplates(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	want := Manifest{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   ObjectMeta{Name: "cart-checkout"},
		Spec: Definition{
			NamespaceName: "api_tests",
			Name:          "cart_checkout",
			Version:       "0.1.0",
			InputSchema:   json.RawMessage(`{"properties":{"cart_id":{"type":"integer"}},"required":["cart_id"],"type":"object"}`),
			Steps: []Step{
				{
					Name: "fetch_cart", Description: "Fetch cart details from the e-commerce system",
					Handler: Handler{
						Callable:       "ApiTask::StepHandler::CartFetchStepHandler",
						Initialization: json.RawMessage(`{"params":{"cart_id":1},"type":"api","url":"https://api.ecommerce.com/cart"}`),
					},
				},
				{
					Name: "fetch_products", Description: "Fetch product details",
					Handler: Handler{Callable: "ApiTask::StepHandler::ProductsFetchStepHandler"},
					Retry:   &RetryPolicy{Retryable: &yes, MaxAttempts: 3},
				},
				{
					Name: "validate_products", Description: "Validate the products in the cart",
					Handler:   Handler{Callable: "ApiTask::StepHandler::ProductsValidateStepHandler"},
					DependsOn: []string{"fetch_cart", "fetch_products"},
				},
				{
					Name: "create_order", Description: "Create the order from the validated cart",
					Handler:   Handler{Callable: "ApiTask::StepHandler::CreateOrderStepHandler"},
					DependsOn: []string{"validate_products"},
					Retry:     &RetryPolicy{Retryable: &no, MaxAttempts: 1},
				},
			},
		},
	}
	require.Equal(t, want, convertFile(t, "classic_rails_cart.yaml"))
}

// classic is a minimal valid classic template with extra appended (YAML
// lines at the top level or, indented by four spaces, in the only step).
func classic(extra string) string {
	return "name: demo_flow\nnamespace_name: demo\nversion: 1.0.0\nsteps:\n  - name: only\n    handler: {callable: demo.Only}\n" + extra
}

func TestConvertClassic_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input string
		wantErr     []string
	}{
		{"unknown top-level field", classic("owner_team: payments\n"), []string{"classic template: owner_team: unknown field"}},
		{"unknown step field", classic("    skippable: true\n"), []string{"steps[0].skippable: unknown field"}},
		{"unknown retry field", classic("    retry: {jitter: 5}\n"), []string{"steps[0].retry.jitter: unknown field"}},
		{"mistyped field", classic("    timeout_seconds: soon\n"), []string{"steps[0].timeout_seconds: must be an integer, got string"}},
		{"handler and handler_class", classic("    handler_class: Demo::Only\n"), []string{"steps[0]: handler and handler_class are alternatives"}},
		{"handler_config with handler", classic("    handler_config: {a: 1}\n"), []string{"steps[0]: handler_config goes with handler_class"}},
		{
			"limits that disagree", classic("    default_retry_limit: 3\n    retry: {limit: 5}\n"),
			[]string{"steps[0]: retry.limit (5) and default_retry_limit (3) disagree"},
		},
		{
			"retryable settings that disagree", classic("    default_retryable: false\n    retry: {retryable: true}\n"),
			[]string{"retry.retryable (true) and default_retryable (false) disagree"},
		},
		{
			"steps and step_templates", classic("step_templates:\n  - name: other\n    handler_class: Demo::Other\n"),
			[]string{"steps and step_templates are alternatives"},
		},
		{"schema and input_schema", classic("schema: {}\ninput_schema: {}\n"), []string{"schema and input_schema are alternatives"}},
		{"already a manifest", taskTemplate("alpha", ""), []string{"already a Kubernetes manifest"}},
		{"two documents", classic("") + "---\n" + classic(""), []string{"holds 2 documents"}},
		{"empty file", "# nothing\n", []string{"the file is empty"}},
		{"not an object", "- a\n", []string{"must be an object, got array"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ConvertClassic([]byte(tt.input))
			require.Error(t, err)
			for _, want := range tt.wantErr {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestConvertClassic_InvalidResult(t *testing.T) {
	t.Parallel()
	input := classic("    depends_on_step: second\n  - name: second\n    handler: {callable: demo.Second}\n    dependencies: [only]\n")
	m, err := ConvertClassic([]byte(input))
	problems := problemsOf(t, err)
	require.Equal(t, []Problem{{Field: "steps", Message: "dependency cycle: only → second → only"}}, problems)
	require.Equal(t, "demo-flow", m.Metadata.Name, "the manifest is returned with the problems")
}

func TestConvertClassic_Values(t *testing.T) {
	t.Parallel()
	m, err := ConvertClassic([]byte(strings.Replace(classic(
		"    retry: {limit: 0, backoff_base_ms: 0, backoff: fixed}\n    timeout_seconds: 5\n"), "version: 1.0.0", "version: 1", 1)))
	problems := problemsOf(t, err)
	require.Equal(t, "version", problems[0].Field, "a numeric version keeps its text and fails validation")
	require.Equal(t, "1", m.Spec.Version)
	require.Equal(t, &RetryPolicy{MaxAttempts: 1, BackoffBaseMs: 1, Backoff: BackoffConstant}, m.Spec.Steps[0].Retry)
	require.Equal(t, 5, m.Spec.Steps[0].TimeoutSeconds)
}

func TestObjectNameFor(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"order_processing":                  "order-processing",
		"api_task/integration_yaml_example": "api-task-integration-yaml-example",
		"_Private.Flow_":                    "private.flow",
		"plain":                             "plain",
		"":                                  "",
	} {
		require.Equal(t, want, objectNameFor(name), name)
	}
}
