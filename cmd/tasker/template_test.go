package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/template"
)

// templateSamplesDir holds the five example TaskTemplates, a WorkerPool and a
// kustomization.
const templateSamplesDir = "../../config/samples"

// sampleKeys maps each sample file to the template it defines and its step count.
var sampleKeys = map[string]string{
	"workflows_v1alpha1_tasktemplate_linear.yaml":            "linear_workflow/mathematical_sequence@1.0.0 (4 steps)",
	"workflows_v1alpha1_tasktemplate_diamond.yaml":           "diamond_workflow/diamond_pattern@1.0.0 (4 steps)",
	"workflows_v1alpha1_tasktemplate_tree.yaml":              "tree_workflow/hierarchical_tree@1.0.0 (8 steps)",
	"workflows_v1alpha1_tasktemplate_mixed_dag.yaml":         "mixed_dag_workflow/complex_dag@1.0.0 (7 steps)",
	"workflows_v1alpha1_tasktemplate_order_fulfillment.yaml": "order_fulfillment/business_workflow@1.0.0 (4 steps)",
}

// cyclicTemplate is a TaskTemplate whose two steps depend on each other.
const cyclicTemplate = `apiVersion: workflows.tasker.dev/v1alpha1
kind: TaskTemplate
metadata:
  name: cyclic
spec:
  namespaceName: demo
  version: 1.0.0
  steps:
    - {name: step_a, handler: {callable: demo.A}, dependsOn: [step_b]}
    - {name: step_b, handler: {callable: demo.B}, dependsOn: [step_a]}
`

// classicTemplate is a small template in the classic tasker format.
const classicTemplate = `name: order_processing
namespace_name: ecommerce
version: 2.1.0
task_handler_class: OrderProcessingHandler
schema: {type: object, required: [order_id]}
step_templates:
  - name: validate_order
    handler_class: Ecommerce::ValidateOrderHandler
    handler_config: {strict: true}
  - name: ship_order
    depends_on_step: validate_order
    handler: {callable: Ecommerce::ShipOrderHandler}
    retry: {retryable: true, limit: 5, backoff: linear, backoff_base_ms: 500}
    timeout_seconds: 45
`

// writeTemplateFile writes content to name in a fresh temporary directory and
// returns its path.
func writeTemplateFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// runTaskerWithStdin runs the command line in-process with stdin as its
// standard input and returns its output.
func runTaskerWithStdin(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func TestTemplateValidate(t *testing.T) {
	t.Parallel()

	t.Run("every sample is valid", func(t *testing.T) {
		t.Parallel()
		out, err := runTasker(t.Context(), t, "template", "validate", "-f", templateSamplesDir)
		require.NoError(t, err, out)
		for file, key := range sampleKeys {
			require.Contains(t, out, "ok  "+filepath.Join(templateSamplesDir, file)+" "+key+"\n")
		}
		require.Contains(t, out, "skip  "+filepath.Join(templateSamplesDir, "workflows_v1alpha1_workerpool.yaml")+" (no TaskTemplate)")
	})

	t.Run("a cycle is named step by step", func(t *testing.T) {
		t.Parallel()
		bad := writeTemplateFile(t, "cyclic.yaml", cyclicTemplate)
		good := filepath.Join(templateSamplesDir, "workflows_v1alpha1_tasktemplate_linear.yaml")
		out, err := runTasker(t.Context(), t, "template", "validate", "-f", good, "-f", bad)
		require.EqualError(t, err, "1 invalid TaskTemplate document(s)")
		require.Contains(t, out, "ok  "+good+" "+sampleKeys[filepath.Base(good)])
		require.Contains(t, out, bad+": spec.steps: dependency cycle: step_a → step_b → step_a\n")
	})

	t.Run("documents that do not parse are reported", func(t *testing.T) {
		t.Parallel()
		bad := writeTemplateFile(t, "bad.yaml", strings.Replace(cyclicTemplate, "  version: 1.0.0", "  vers: 1.0.0", 1))
		out, err := runTasker(t.Context(), t, "template", "validate", "-f", bad)
		require.Error(t, err)
		require.Contains(t, out, bad+": document 1 (line 1, TaskTemplate cyclic): spec.vers: unknown field\n")
	})

	t.Run("standard input", func(t *testing.T) {
		t.Parallel()
		linear, err := os.ReadFile(filepath.Join(templateSamplesDir, "workflows_v1alpha1_tasktemplate_linear.yaml"))
		require.NoError(t, err)
		out, err := runTaskerWithStdin(t, string(linear), "template", "validate", "-f", "-")
		require.NoError(t, err)
		require.Equal(t, "ok  <stdin> linear_workflow/mathematical_sequence@1.0.0 (4 steps)\n", out)
	})

	t.Run("missing files and flags", func(t *testing.T) {
		t.Parallel()
		_, err := runTasker(t.Context(), t, "template", "validate")
		require.ErrorContains(t, err, `required flag(s) "filename" not set`)
		_, err = runTasker(t.Context(), t, "template", "validate", "-f", filepath.Join(t.TempDir(), "absent.yaml"))
		require.ErrorContains(t, err, "no such file or directory")
		_, err = runTasker(t.Context(), t, "template", "validate", "-f", t.TempDir())
		require.ErrorContains(t, err, "no *.yaml, *.yml or *.json files")
	})
}

// countRegisteredTemplates returns how many templates the database holds and their
// distinct owners.
func countRegisteredTemplates(t *testing.T, db *pgtest.Database) (int, []string) {
	t.Helper()
	var count int
	var owners []string
	err := db.Pool.QueryRow(t.Context(),
		"SELECT count(*), coalesce(array_agg(DISTINCT owner), '{}') FROM tasker.templates").Scan(&count, &owners)
	require.NoError(t, err)
	return count, owners
}

func TestTemplateApply(t *testing.T) {
	t.Parallel()

	t.Run("created then unchanged then updated", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t)
		apply := func(files ...string) string {
			args := []string{"template", "apply", "--database-url", db.URL}
			for _, f := range files {
				args = append(args, "-f", f)
			}
			out, err := runTasker(t.Context(), t, args...)
			require.NoError(t, err, out)
			return out
		}
		out := apply(templateSamplesDir)
		for file, key := range sampleKeys {
			key, _, _ = strings.Cut(key, " (")
			require.Contains(t, out, "created  "+filepath.Join(templateSamplesDir, file)+" "+key+"\n")
		}
		require.Equal(t, len(sampleKeys), strings.Count(apply(templateSamplesDir), "unchanged  "))
		count, owners := countRegisteredTemplates(t, db)
		require.Equal(t, len(sampleKeys), count)
		require.Equal(t, []string{"cli"}, owners)

		linear, err := os.ReadFile(filepath.Join(templateSamplesDir, "workflows_v1alpha1_tasktemplate_linear.yaml"))
		require.NoError(t, err)
		changed := writeTemplateFile(t, "linear.yaml", strings.Replace(string(linear), "in sequence", "one after another", 1))
		require.Equal(t, "updated  "+changed+" linear_workflow/mathematical_sequence@1.0.0\n", apply(changed))
	})

	t.Run("a template of another owner is a conflict", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t)
		file := filepath.Join(templateSamplesDir, "workflows_v1alpha1_tasktemplate_linear.yaml")
		manifests, err := template.ParseManifests(readTemplateFile(t, file))
		require.NoError(t, err)
		def := manifests[0].Definition()
		def.Description = "registered by the operator"
		_, err = orchestration.NewTemplateStore(db.Pool).Register(t.Context(), def, "k8s:default/linear-workflow")
		require.NoError(t, err)

		out, err := runTasker(t.Context(), t, "template", "apply", "-f", file, "--database-url", db.URL)
		require.EqualError(t, err, "1 of 1 template(s) not applied")
		require.Contains(t, out, "conflict  "+file+` linear_workflow/mathematical_sequence@1.0.0: already registered by "k8s:default/linear-workflow"`)
	})

	t.Run("an invalid template stops everything", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t)
		bad := writeTemplateFile(t, "cyclic.yaml", cyclicTemplate)
		out, err := runTasker(t.Context(), t, "template", "apply", "-f", templateSamplesDir, "-f", bad, "--database-url", db.URL)
		require.EqualError(t, err, "1 invalid TaskTemplate document(s); nothing was applied")
		require.Contains(t, out, "dependency cycle")
		count, _ := countRegisteredTemplates(t, db)
		require.Zero(t, count)
	})

	t.Run("the database is not migrated", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewEmptyDatabase(t)
		_, err := runTasker(t.Context(), t, "template", "apply", "-f", templateSamplesDir, "--database-url", db.URL)
		require.ErrorContains(t, err, "run tasker migrate first")
		var exists bool
		require.NoError(t, db.Pool.QueryRow(t.Context(), "SELECT to_regclass('tasker.templates') IS NOT NULL").Scan(&exists))
		require.False(t, exists)
	})

	t.Run("nothing to apply", func(t *testing.T) {
		t.Parallel()
		_, err := runTasker(t.Context(), t, "template", "apply", "--database-url", "postgres://unused",
			"-f", filepath.Join(templateSamplesDir, "workflows_v1alpha1_workerpool.yaml"))
		require.EqualError(t, err, "the files hold no TaskTemplate: nothing to apply")
	})
}

func TestTemplateApply_NeedsADatabaseURL(t *testing.T) {
	t.Setenv("TASKER_DATABASE_URL", "")
	_, err := runTasker(t.Context(), t, "template", "apply", "-f", templateSamplesDir)
	require.ErrorContains(t, err, "--database-url (or TASKER_DATABASE_URL) is required")
}

// readTemplateFile returns the content of a file.
func readTemplateFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

func TestTemplateConvert(t *testing.T) {
	t.Parallel()

	t.Run("round trip through validate", func(t *testing.T) {
		t.Parallel()
		classic := writeTemplateFile(t, "classic.yaml", classicTemplate)
		converted := filepath.Join(t.TempDir(), "converted.yaml")
		out, err := runTasker(t.Context(), t, "template", "convert", "-f", classic, "-o", converted)
		require.NoError(t, err, out)
		require.Empty(t, out)
		manifest := string(readTemplateFile(t, converted))
		require.True(t, strings.HasPrefix(manifest, "# Converted from "+classic+" by tasker template convert.\n"+
			"apiVersion: workflows.tasker.dev/v1alpha1\nkind: TaskTemplate\nmetadata:\n  name: order-processing\n"), manifest)
		require.Contains(t, manifest, "maxAttempts: 5")

		out, err = runTasker(t.Context(), t, "template", "validate", "-f", converted)
		require.NoError(t, err, out)
		require.Equal(t, "ok  "+converted+" ecommerce/order_processing@2.1.0 (2 steps)\n", out)
	})

	t.Run("several files to standard output", func(t *testing.T) {
		t.Parallel()
		classic := writeTemplateFile(t, "classic.yaml", classicTemplate)
		other := writeTemplateFile(t, "other.yaml", strings.Replace(classicTemplate, "2.1.0", "2.2.0", 1))
		out, err := runTasker(t.Context(), t, "template", "convert", "-f", classic+","+other)
		require.NoError(t, err)
		manifests, err := template.ParseManifests([]byte(out))
		require.NoError(t, err)
		require.Len(t, manifests, 2)
		require.Equal(t, "2.2.0", manifests[1].Spec.Version)
	})

	t.Run("an unknown classic field", func(t *testing.T) {
		t.Parallel()
		classic := writeTemplateFile(t, "classic.yaml", classicTemplate+"owner_team: payments\n")
		_, err := runTasker(t.Context(), t, "template", "convert", "-f", classic)
		require.ErrorContains(t, err, classic+": classic template: owner_team: unknown field")
	})

	t.Run("an invalid result is written and reported", func(t *testing.T) {
		t.Parallel()
		classic := writeTemplateFile(t, "classic.yaml", strings.Replace(classicTemplate,
			"    handler_config: {strict: true}\n", "    handler_config: {strict: true}\n    dependencies: [ship_order]\n", 1))
		out, err := runTasker(t.Context(), t, "template", "convert", "-f", classic)
		require.EqualError(t, err, "1 converted template(s) are invalid: fix them before applying")
		require.Contains(t, out, classic+": spec.steps: dependency cycle: validate_order → ship_order → validate_order\n")
		require.Contains(t, out, "kind: TaskTemplate")
	})
}

func TestTemplateHelp(t *testing.T) {
	t.Parallel()
	out, err := runTasker(t.Context(), t, "template", "--help")
	require.NoError(t, err)
	for _, command := range []string{"validate", "apply", "convert"} {
		require.Contains(t, out, command)
	}
	out, err = runTasker(t.Context(), t, "template", "apply", "--help")
	require.NoError(t, err)
	for _, flag := range []string{"--filename", "-f", "--database-url", "TASKER_DATABASE_URL", "tasker migrate"} {
		require.Contains(t, out, flag)
	}
}
