package v1alpha1

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// samplesDir holds the example TaskTemplates and WorkerPool.
const samplesDir = "../../config/samples"

func TestSamplesDecodeStrictly(t *testing.T) {
	t.Parallel()

	kinds := map[string]int{}
	for _, path := range sampleFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var meta metav1.TypeMeta
			decodeStrictYAML(t, path, &meta, false)
			require.Equal(t, GroupVersion.String(), meta.APIVersion)
			kinds[meta.Kind]++

			switch meta.Kind {
			case "TaskTemplate":
				var tt TaskTemplate
				decodeStrictYAML(t, path, &tt, true)
				require.NotEmpty(t, tt.Spec.Steps)
			case "WorkerPool":
				var wp WorkerPool
				decodeStrictYAML(t, path, &wp, true)
				require.NotEmpty(t, wp.Spec.Namespaces)
				require.NotEmpty(t, wp.Spec.Database.SecretRef.Name)
			default:
				require.Failf(t, "unexpected kind", "%s in %s", meta.Kind, path)
			}
		})
	}
	require.Equal(t, map[string]int{"TaskTemplate": 5, "WorkerPool": 1}, kinds)
}

// sampleFiles lists the manifests of config/samples, without its kustomization.
func sampleFiles(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
	require.NoError(t, err)
	var files []string
	for _, path := range paths {
		if filepath.Base(path) != "kustomization.yaml" {
			files = append(files, path)
		}
	}
	require.NotEmpty(t, files)
	return files
}

// decodeStrictYAML decodes the one-document YAML file at path into v. When strict
// is true, a field that v's type does not declare is an error, as it is for the
// API server with strict field validation.
func decodeStrictYAML(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	raw, err := yaml.YAMLToJSON(data)
	require.NoError(t, err, path)
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	require.NoError(t, dec.Decode(v), path)
}
