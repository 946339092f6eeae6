package v1alpha1

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/taskerops/tasker/orchestration/template"
)

func TestTaskTemplateSpecDefinition(t *testing.T) {
	t.Parallel()

	t.Run("LinearSampleEqualsParsedManifest", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(samplesDir, "workflows_v1alpha1_tasktemplate_linear.yaml")
		tt, want := loadTaskTemplate(t, path)
		got := tt.Spec.Definition()
		require.Equal(t, canonical(t, want.Spec), canonical(t, got))
		require.Equal(t, want.Spec.Fingerprint(), got.Fingerprint())
	})

	t.Run("EverySampleEqualsParsedManifestAndIsValid", func(t *testing.T) {
		t.Parallel()
		for _, path := range sampleFiles(t) {
			var meta metav1.TypeMeta
			decodeStrictYAML(t, path, &meta, false)
			if meta.Kind != "TaskTemplate" {
				continue
			}
			tt, want := loadTaskTemplate(t, path)
			got := tt.Definition()
			require.Equal(t, canonical(t, want.Definition()), canonical(t, got), path)
			require.NoError(t, got.Validate(), path)
		}
	})

	t.Run("ConvertsEveryField", func(t *testing.T) {
		t.Parallel()
		spec := fullSpec()
		want := template.Definition{
			NamespaceName:    "payments",
			Name:             "refund",
			Version:          "2.1.0-rc.1+build.5",
			Description:      "Refund a payment.",
			IdentityStrategy: template.IdentityCallerProvided,
			InputSchema:      json.RawMessage(`{"type":"object"}`),
			Steps: []template.Step{
				{
					Name:        "check",
					Description: "Check the payment.",
					Handler: template.Handler{
						Callable:       "payments.CheckHandler",
						Initialization: json.RawMessage(`{"limit":5}`),
					},
					Retry: &template.RetryPolicy{
						Retryable:     new(false),
						MaxAttempts:   5,
						Backoff:       template.BackoffLinear,
						BackoffBaseMs: 200,
						MaxBackoffMs:  5000,
						JitterPercent: new(0),
					},
					TimeoutSeconds: 30,
				},
				{
					Name:      "refund",
					Handler:   template.Handler{Callable: "payments::RefundHandler"},
					DependsOn: []string{"check"},
				},
			},
		}
		require.Equal(t, want, spec.Definition())
	})

	t.Run("SharesNoMemoryWithTheSpec", func(t *testing.T) {
		t.Parallel()
		spec, pristine := fullSpec(), fullSpec()
		def := spec.Definition()
		spec.InputSchema.Raw[1] = 'X'
		spec.Steps[0].Handler.Initialization.Raw[1] = 'X'
		spec.Steps[1].DependsOn[0] = "other"
		*spec.Steps[0].Retry.Retryable = true
		*spec.Steps[0].Retry.JitterPercent = 50
		require.Equal(t, pristine.Definition(), def)
	})

	t.Run("NameDefaultsToMetadataNameOnlyOnTheObject", func(t *testing.T) {
		t.Parallel()
		tt := TaskTemplate{ObjectMeta: metav1.ObjectMeta{Name: "refund-workflow"}, Spec: fullSpec()}
		tt.Spec.Name = ""
		require.Empty(t, tt.Spec.Definition().Name)
		require.Equal(t, "refund-workflow", tt.Definition().Name)

		tt.Spec.Name = "refund"
		require.Equal(t, "refund", tt.Definition().Name)
	})

	t.Run("AbsentOptionalValuesStayAbsent", func(t *testing.T) {
		t.Parallel()
		spec := TaskTemplateSpec{
			NamespaceName: "payments",
			Version:       "1.0.0",
			Steps:         []TaskTemplateStep{{Name: "check", Handler: StepHandler{Callable: "payments.CheckHandler"}}},
		}
		want := template.Definition{
			NamespaceName: "payments",
			Version:       "1.0.0",
			Steps:         []template.Step{{Name: "check", Handler: template.Handler{Callable: "payments.CheckHandler"}}},
		}
		require.Equal(t, want, spec.Definition())
	})
}

// fullSpec returns a spec in which every field is set.
func fullSpec() TaskTemplateSpec {
	return TaskTemplateSpec{
		NamespaceName:    "payments",
		Name:             "refund",
		Version:          "2.1.0-rc.1+build.5",
		Description:      "Refund a payment.",
		IdentityStrategy: IdentityCallerProvided,
		InputSchema:      &apiextensionsv1.JSON{Raw: []byte(`{"type":"object"}`)},
		Steps: []TaskTemplateStep{
			{
				Name:        "check",
				Description: "Check the payment.",
				Handler: StepHandler{
					Callable:       "payments.CheckHandler",
					Initialization: &apiextensionsv1.JSON{Raw: []byte(`{"limit":5}`)},
				},
				Retry: &RetryPolicy{
					Retryable:     new(false),
					MaxAttempts:   5,
					Backoff:       BackoffLinear,
					BackoffBaseMs: 200,
					MaxBackoffMs:  5000,
					JitterPercent: new(int32(0)),
				},
				TimeoutSeconds: 30,
			},
			{
				Name:      "refund",
				Handler:   StepHandler{Callable: "payments::RefundHandler"},
				DependsOn: []string{"check"},
			},
		},
	}
}

// loadTaskTemplate reads a one-document TaskTemplate manifest twice: strictly into
// the API type, and with the engine's template.ParseManifests.
func loadTaskTemplate(t *testing.T, path string) (*TaskTemplate, template.Manifest) {
	t.Helper()
	var tt TaskTemplate
	decodeStrictYAML(t, path, &tt, true)

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	manifests, err := template.ParseManifests(data)
	require.NoError(t, err)
	require.Len(t, manifests, 1, path)
	return &tt, manifests[0]
}

// canonical returns def with its raw JSON re-encoded compactly with sorted keys,
// so that definitions decoded by different YAML-to-JSON converters compare equal.
func canonical(t *testing.T, def template.Definition) template.Definition {
	t.Helper()
	def.InputSchema = canonicalJSON(t, def.InputSchema)
	def.Steps = append([]template.Step(nil), def.Steps...)
	for i := range def.Steps {
		def.Steps[i].Handler.Initialization = canonicalJSON(t, def.Steps[i].Handler.Initialization)
	}
	return def
}

// canonicalJSON re-encodes raw with sorted object keys and exact numbers.
func canonicalJSON(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if raw == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return out
}
