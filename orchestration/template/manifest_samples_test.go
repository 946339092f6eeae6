package template

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// samplesDir holds the example TaskTemplates and WorkerPool.
const samplesDir = "../../config/samples"

// wantStep is a step of an example workflow as WORKFLOWS.md describes it.
type wantStep struct {
	name      string
	callable  string
	dependsOn []string
}

// sampleWorkflow is an example workflow as WORKFLOWS.md describes it.
type sampleWorkflow struct {
	file, context               string
	namespace, name, objectName string
	steps                       []wantStep
}

// sampleWorkflows are the five example workflows of WORKFLOWS.md.
var sampleWorkflows = []sampleWorkflow{
	{
		file: "workflows_v1alpha1_tasktemplate_linear.yaml", context: "linear.json",
		namespace: "linear_workflow", name: "mathematical_sequence", objectName: "linear-workflow",
		steps: []wantStep{
			{"linear_step_1", "linear_workflow.LinearStep1Handler", nil},
			{"linear_step_2", "linear_workflow.LinearStep2Handler", []string{"linear_step_1"}},
			{"linear_step_3", "linear_workflow.LinearStep3Handler", []string{"linear_step_2"}},
			{"linear_step_4", "linear_workflow.LinearStep4Handler", []string{"linear_step_3"}},
		},
	},
	{
		file: "workflows_v1alpha1_tasktemplate_diamond.yaml", context: "diamond.json",
		namespace: "diamond_workflow", name: "diamond_pattern", objectName: "diamond-workflow",
		steps: []wantStep{
			{"diamond_start", "diamond_workflow.DiamondStartHandler", nil},
			{"diamond_branch_b", "diamond_workflow.DiamondBranchBHandler", []string{"diamond_start"}},
			{"diamond_branch_c", "diamond_workflow.DiamondBranchCHandler", []string{"diamond_start"}},
			{"diamond_end", "diamond_workflow.DiamondEndHandler", []string{"diamond_branch_b", "diamond_branch_c"}},
		},
	},
	{
		file: "workflows_v1alpha1_tasktemplate_tree.yaml", context: "tree.json",
		namespace: "tree_workflow", name: "hierarchical_tree", objectName: "tree-workflow",
		steps: []wantStep{
			{"tree_root", "tree_workflow.TreeRootHandler", nil},
			{"tree_branch_left", "tree_workflow.TreeBranchLeftHandler", []string{"tree_root"}},
			{"tree_branch_right", "tree_workflow.TreeBranchRightHandler", []string{"tree_root"}},
			{"tree_leaf_d", "tree_workflow.TreeLeafDHandler", []string{"tree_branch_left"}},
			{"tree_leaf_e", "tree_workflow.TreeLeafEHandler", []string{"tree_branch_left"}},
			{"tree_leaf_f", "tree_workflow.TreeLeafFHandler", []string{"tree_branch_right"}},
			{"tree_leaf_g", "tree_workflow.TreeLeafGHandler", []string{"tree_branch_right"}},
			{
				"tree_final_convergence", "tree_workflow.TreeFinalConvergenceHandler",
				[]string{"tree_leaf_d", "tree_leaf_e", "tree_leaf_f", "tree_leaf_g"},
			},
		},
	},
	{
		file: "workflows_v1alpha1_tasktemplate_mixed_dag.yaml", context: "mixed_dag.json",
		namespace: "mixed_dag_workflow", name: "complex_dag", objectName: "mixed-dag-workflow",
		steps: []wantStep{
			{"dag_init", "mixed_dag_workflow.DagInitHandler", nil},
			{"dag_process_left", "mixed_dag_workflow.DagProcessLeftHandler", []string{"dag_init"}},
			{"dag_process_right", "mixed_dag_workflow.DagProcessRightHandler", []string{"dag_init"}},
			{"dag_validate", "mixed_dag_workflow.DagValidateHandler", []string{"dag_process_left", "dag_process_right"}},
			{"dag_transform", "mixed_dag_workflow.DagTransformHandler", []string{"dag_process_left"}},
			{"dag_analyze", "mixed_dag_workflow.DagAnalyzeHandler", []string{"dag_process_right"}},
			{"dag_finalize", "mixed_dag_workflow.DagFinalizeHandler", []string{"dag_validate", "dag_transform", "dag_analyze"}},
		},
	},
	{
		file: "workflows_v1alpha1_tasktemplate_order_fulfillment.yaml", context: "order_fulfillment.json",
		namespace: "order_fulfillment", name: "business_workflow", objectName: "order-fulfillment",
		steps: []wantStep{
			{"validate_order", "order_fulfillment.ValidateOrderHandler", nil},
			{"reserve_inventory", "order_fulfillment.ReserveInventoryHandler", []string{"validate_order"}},
			{"process_payment", "order_fulfillment.ProcessPaymentHandler", []string{"validate_order", "reserve_inventory"}},
			{"ship_order", "order_fulfillment.ShipOrderHandler", []string{"validate_order", "reserve_inventory", "process_payment"}},
		},
	},
}

// parseSample parses one file of config/samples.
func parseSample(t *testing.T, name string) []Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(samplesDir, name))
	require.NoError(t, err)
	manifests, err := ParseManifests(data)
	require.NoError(t, err, name)
	return manifests
}

func TestSamples_EveryFileParses(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(samplesDir)
	require.NoError(t, err)
	templates := map[string]Manifest{}
	for _, entry := range entries {
		if entry.IsDir() || !strings.HasSuffix(entry.Name(), ".yaml") {
			continue
		}
		for _, m := range parseSample(t, entry.Name()) {
			require.NoError(t, m.Definition().Validate(), entry.Name())
			templates[entry.Name()] = m
		}
	}
	require.Len(t, templates, len(sampleWorkflows), "one TaskTemplate per workflow; the WorkerPool and kustomization are skipped")
}

func TestSamples_MatchWorkflows(t *testing.T) {
	t.Parallel()
	for _, want := range sampleWorkflows {
		t.Run(want.namespace, func(t *testing.T) {
			t.Parallel()
			manifests := parseSample(t, want.file)
			require.Len(t, manifests, 1)
			m := manifests[0]
			require.Equal(t, APIVersion, m.APIVersion)
			require.Equal(t, want.objectName, m.Metadata.Name)
			def := m.Definition()
			require.Equal(t, want.namespace, def.NamespaceName)
			require.Equal(t, want.name, def.Name)
			require.Equal(t, "1.0.0", def.Version)
			require.NotEmpty(t, def.Description)
			require.Equal(t, IdentityAlwaysUnique, def.IdentityStrategy)
			got := make([]wantStep, len(def.Steps))
			for i, step := range def.Steps {
				require.NotEmpty(t, step.Description, step.Name)
				got[i] = wantStep{step.Name, step.Handler.Callable, step.DependsOn}
			}
			require.Equal(t, want.steps, got)
			checkSampleContext(t, def, want.context)
		})
	}
}

// checkSampleContext checks that the sample context of a workflow satisfies its
// input schema.
func checkSampleContext(t *testing.T, def Definition, name string) {
	t.Helper()
	context, err := os.ReadFile(filepath.Join(samplesDir, "contexts", name))
	require.NoError(t, err)
	schema, err := CompileSchema(def.InputSchema)
	require.NoError(t, err)
	require.Empty(t, schema.Validate(context), name)
}

func TestSamples_MathInputSchema(t *testing.T) {
	t.Parallel()
	for _, want := range sampleWorkflows[:4] {
		schema, err := CompileSchema(parseSample(t, want.file)[0].Spec.InputSchema)
		require.NoError(t, err)
		for context, valid := range map[string]bool{
			`{"even_number": 2}`: true, `{"even_number": 1000000}`: true,
			`{"even_number": 7}`: false, `{"even_number": 0}`: false,
			`{"even_number": "6"}`: false, `{}`: false,
		} {
			require.Equal(t, valid, len(schema.Validate(json.RawMessage(context))) == 0, "%s: %s", want.file, context)
		}
	}
}

func TestSamples_OrderFulfillment(t *testing.T) {
	t.Parallel()
	def := parseSample(t, "workflows_v1alpha1_tasktemplate_order_fulfillment.yaml")[0].Definition()
	payment := def.Steps[2]
	require.Equal(t, "process_payment", payment.Name)
	require.Equal(t, &RetryPolicy{MaxAttempts: 2, BackoffBaseMs: 2000}, payment.Retry)

	schema, err := CompileSchema(def.InputSchema)
	require.NoError(t, err)
	context, err := os.ReadFile(filepath.Join(samplesDir, "contexts", "order_fulfillment.json"))
	require.NoError(t, err)
	for _, replace := range [][2]string{
		{`"quantity": 2`, `"quantity": 0`},
		{`"price": 29.99`, `"price": -1`},
		{`"credit_card"`, `"cash"`},
		{`"standard"`, `"teleport"`},
		{`"email": "john.doe@example.com"`, `"mail": "john.doe@example.com"`},
	} {
		bad := strings.Replace(string(context), replace[0], replace[1], 1)
		require.NotEqual(t, string(context), bad)
		require.NotEmpty(t, schema.Validate(json.RawMessage(bad)), replace[1])
	}
	empty := `{"customer": {"id": 1, "name": "a", "email": "b"}, "items": [], "payment": {"method": "paypal", "token": "t"},
		"shipping": {"method": "express", "address": {"street": "s", "city": "c", "zip": "z", "country": "US"}}}`
	require.NotEmpty(t, schema.Validate(json.RawMessage(empty)), "items needs at least one entry")
}

func TestSamples_WorkerPoolServesEveryWorkflow(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(samplesDir, "workflows_v1alpha1_workerpool.yaml"))
	require.NoError(t, err)
	docs := splitDocuments(data)
	require.Len(t, docs, 1)
	var pool struct {
		Kind string `json:"kind"`
		Spec struct {
			Namespaces  []string `json:"namespaces"`
			Replicas    int      `json:"replicas"`
			Concurrency int      `json:"concurrency"`
			Database    struct {
				SecretRef struct {
					Name string `json:"name"`
					Key  string `json:"key"`
				} `json:"secretRef"`
			} `json:"database"`
		} `json:"spec"`
	}
	require.NoError(t, json.Unmarshal(docs[0].raw, &pool))
	require.Equal(t, "WorkerPool", pool.Kind)
	for _, w := range sampleWorkflows {
		require.Contains(t, pool.Spec.Namespaces, w.namespace)
	}
	require.Equal(t, 2, pool.Spec.Replicas)
	require.Equal(t, 16, pool.Spec.Concurrency)
	require.Equal(t, "tasker-db", pool.Spec.Database.SecretRef.Name)
	require.Equal(t, "url", pool.Spec.Database.SecretRef.Key)
}

func TestSamples_KustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(samplesDir, "kustomization.yaml"))
	require.NoError(t, err)
	docs := splitDocuments(data)
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	require.NoError(t, json.Unmarshal(docs[0].raw, &kustomization))
	files, err := filepath.Glob(filepath.Join(samplesDir, "workflows_*.yaml"))
	require.NoError(t, err)
	for i, file := range files {
		files[i] = filepath.Base(file)
	}
	require.ElementsMatch(t, files, kustomization.Resources)
}
