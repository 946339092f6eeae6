package template

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// taskTemplate returns a TaskTemplate manifest named name whose spec holds
// specExtra (indented YAML lines) after a valid namespace, version and step.
func taskTemplate(name, specExtra string) string {
	return `apiVersion: workflows.tasker.dev/v1alpha1
kind: TaskTemplate
metadata:
  name: ` + name + `
  labels: {team: payments}
spec:
  namespaceName: demo
  version: 1.0.0
  steps:
    - name: only
      handler: {callable: demo.Only}
` + specExtra
}

// templateNames returns the spec names of manifests.
func templateNames(manifests []Manifest) []string {
	names := make([]string, len(manifests))
	for i, m := range manifests {
		names[i] = m.Definition().Name
	}
	return names
}

func TestParseManifests(t *testing.T) {
	t.Parallel()
	configMap := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"
	workerPool := "apiVersion: workflows.tasker.dev/v1alpha1\nkind: WorkerPool\nmetadata: {name: w}\nspec: {namespaces: [demo]}\n"
	tests := []struct {
		name    string
		input   string
		want    []string // spec names of the manifests returned
		wantErr []string // substrings of the error; none means no error
	}{
		{name: "one document", input: taskTemplate("alpha", ""), want: []string{"alpha"}},
		{
			name:  "spec.name wins over metadata.name",
			input: taskTemplate("alpha", "  name: alpha_template\n"),
			want:  []string{"alpha_template"},
		},
		{
			name: "multi-document with other kinds and empty documents",
			input: "# leading comment\n---\n" + taskTemplate("alpha", "") + "---\n" + configMap + "---\n# only a comment\n---\n" +
				workerPool + "---\n" + taskTemplate("beta", "") + "...\n",
			want: []string{"alpha", "beta"},
		},
		{name: "only other kinds", input: configMap + "---\n" + workerPool},
		{name: "empty file", input: "  \n# nothing\n"},
		{
			name:  "JSON stream",
			input: `{"apiVersion":"workflows.tasker.dev/v1alpha1","kind":"TaskTemplate","metadata":{"name":"alpha"},"spec":{"namespaceName":"demo","version":"1.0.0","steps":[{"name":"only","handler":{"callable":"demo.Only"}}]}}` + "\n\t" + `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"url":"x"}}`,
			want:  []string{"alpha"},
		},
		{
			name:  "kubectl List",
			input: "apiVersion: v1\nkind: List\nitems:\n- " + indent(taskTemplate("alpha", "")) + "- " + indent(configMap) + "- " + indent(taskTemplate("beta", "")),
			want:  []string{"alpha", "beta"},
		},
		{
			name:    "unknown spec field names its path and document",
			input:   taskTemplate("alpha", "") + "---\n" + taskTemplate("beta", "      retry: {maxAttempt: 3}\n"),
			want:    []string{"alpha"},
			wantErr: []string{"document 2 (line 13, TaskTemplate beta): spec.steps[0].retry.maxAttempt: unknown field"},
		},
		{
			name:    "spec fields are case-sensitive",
			input:   taskTemplate("alpha", "  Description: hi\n"),
			wantErr: []string{"spec.Description: unknown field"},
		},
		{
			name:    "mistyped value",
			input:   taskTemplate("alpha", "      timeoutSeconds: \"30\"\n"),
			wantErr: []string{"spec.steps[0].timeoutSeconds: must be an integer, got string"},
		},
		{
			name:    "unknown top-level field",
			input:   taskTemplate("alpha", "specs: {}\n"),
			wantErr: []string{"document 1 (line 1, TaskTemplate alpha): specs: unknown field"},
		},
		{
			name:    "unsupported apiVersion",
			input:   strings.Replace(taskTemplate("alpha", ""), "v1alpha1", "v1", 1),
			wantErr: []string{`apiVersion "workflows.tasker.dev/v1" is not supported for kind TaskTemplate: want workflows.tasker.dev/v1alpha1`},
		},
		{
			name:    "TaskTemplate of another group",
			input:   strings.Replace(taskTemplate("alpha", ""), "workflows.tasker.dev", "tasker.example.com", 1),
			wantErr: []string{`apiVersion "tasker.example.com/v1alpha1" is not supported`},
		},
		{
			name:    "unknown kind in the group",
			input:   strings.Replace(taskTemplate("alpha", ""), "kind: TaskTemplate", "kind: TaskTemplates", 1),
			wantErr: []string{`unknown kind "TaskTemplates" in API group workflows.tasker.dev`},
		},
		{
			name:    "not a Kubernetes object: a classic template",
			input:   "name: x\nnamespace_name: demo\nsteps: []\n",
			wantErr: []string{"apiVersion and kind are required", "tasker template convert"},
		},
		{
			name:    "metadata.name is required",
			input:   strings.Replace(taskTemplate("alpha", ""), "  name: alpha\n", "", 1),
			wantErr: []string{"metadata.name is required"},
		},
		{
			name:    "metadata.name must be a DNS-1123 name",
			input:   taskTemplate("Alpha_1", ""),
			wantErr: []string{`metadata.name "Alpha_1" must be a DNS-1123 subdomain`},
		},
		{
			name:    "spec is required",
			input:   "apiVersion: workflows.tasker.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: a}\n",
			wantErr: []string{"spec is required"},
		},
		{
			name:    "YAML errors carry the line of the file",
			input:   taskTemplate("alpha", "") + "---\n" + "apiVersion: v1\nkind: [unclosed\n",
			want:    []string{"alpha"},
			wantErr: []string{"document 2 (line 13): invalid YAML", "line 14"},
		},
		{
			name:    "duplicate keys",
			input:   taskTemplate("alpha", "  version: 2.0.0\n"),
			wantErr: []string{"invalid YAML", `"version"`},
		},
		{
			name:    "a document must be an object",
			input:   "- a\n- b\n",
			wantErr: []string{"a manifest must be an object, got array"},
		},
		{
			name:    "broken JSON",
			input:   `{"apiVersion": "v1",`,
			wantErr: []string{"document 1 (line 1): invalid JSON"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			manifests, err := ParseManifests([]byte(tt.input))
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				for _, want := range tt.wantErr {
					require.Contains(t, err.Error(), want)
				}
			}
			require.Equal(t, tt.want, nilIfEmpty(templateNames(manifests)))
		})
	}
}

// indent indents every line but the first by two spaces, to nest a document
// in a YAML list item.
func indent(doc string) string {
	return strings.TrimSuffix(strings.ReplaceAll(doc, "\n", "\n  "), "  ")
}

// nilIfEmpty returns nil for an empty slice.
func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestParseManifests_ErrorsAreDocumentErrors(t *testing.T) {
	t.Parallel()
	_, err := ParseManifests([]byte(taskTemplate("alpha", "  bogus: 1\n") + "---\n" + taskTemplate("beta", "  other: 2\n")))
	var docErr *DocumentError
	require.ErrorAs(t, err, &docErr)
	require.Equal(t, 1, docErr.Document)
	require.Equal(t, "TaskTemplate alpha", docErr.Object)
	require.Contains(t, err.Error(), "document 2 (line 14, TaskTemplate beta): spec.other: unknown field")
}

func TestManifest_Definition(t *testing.T) {
	t.Parallel()
	m := Manifest{Metadata: ObjectMeta{Name: "from-metadata"}, Spec: Definition{NamespaceName: "demo"}}
	require.Equal(t, "from-metadata", m.Definition().Name)
	m.Spec.Name = "from_spec"
	require.Equal(t, "from_spec", m.Definition().Name)
}

func TestManifest_YAMLRoundTrip(t *testing.T) {
	t.Parallel()
	input := taskTemplate("alpha", `  description: "yes"
  inputSchema:
    type: object
    properties:
      flag: {enum: ["on", "off", "true", "12"]}
`)
	manifests, err := ParseManifests([]byte(input))
	require.NoError(t, err)
	out, err := manifests[0].YAML()
	require.NoError(t, err)
	require.Contains(t, string(out), "apiVersion: workflows.tasker.dev/v1alpha1\nkind: TaskTemplate\nmetadata:\n  name: alpha\n")
	require.Contains(t, string(out), `enum: ["on", "off", "true", "12"]`)
	require.Contains(t, string(out), `description: "yes"`)
	again, err := ParseManifests(out)
	require.NoError(t, err)
	require.Equal(t, manifests, again)

	for _, w := range sampleWorkflows {
		m := parseSample(t, w.file)[0]
		out, err := m.YAML()
		require.NoError(t, err)
		again, err := ParseManifests(out)
		require.NoError(t, err)
		require.Equal(t, []Manifest{m}, again, w.file)
	}
}
