package e2e

import (
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/test/e2e/harness"
)

// workflowTimeout bounds the run of one task of the example workflows.
const workflowTimeout = time.Minute

// mathWorkflow is one of the four math example workflows, as WORKFLOWS.md
// defines it.
type mathWorkflow struct {
	namespace, name string
	// final is the step holding the workflow's result.
	final string
	// exponents maps every step to the power of N its value is.
	exponents map[string]int64
}

// mathWorkflows are the four math workflows of WORKFLOWS.md.
var mathWorkflows = []mathWorkflow{
	{
		namespace: "linear_workflow", name: "mathematical_sequence", final: "linear_step_4",
		exponents: map[string]int64{"linear_step_1": 2, "linear_step_2": 4, "linear_step_3": 8, "linear_step_4": 16},
	},
	{
		namespace: "diamond_workflow", name: "diamond_pattern", final: "diamond_end",
		exponents: map[string]int64{"diamond_start": 2, "diamond_branch_b": 4, "diamond_branch_c": 4, "diamond_end": 16},
	},
	{
		namespace: "tree_workflow", name: "hierarchical_tree", final: "tree_final_convergence",
		exponents: map[string]int64{
			"tree_root": 2, "tree_branch_left": 4, "tree_branch_right": 4,
			"tree_leaf_d": 8, "tree_leaf_e": 8, "tree_leaf_f": 8, "tree_leaf_g": 8, "tree_final_convergence": 64,
		},
	},
	{
		namespace: "mixed_dag_workflow", name: "complex_dag", final: "dag_finalize",
		exponents: map[string]int64{
			"dag_init": 2, "dag_process_left": 4, "dag_process_right": 4,
			"dag_validate": 16, "dag_transform": 8, "dag_analyze": 8, "dag_finalize": 64,
		},
	},
}

// workedValues are the final values WORKFLOWS.md gives for N = 6, a check
// of the exponents above.
var workedValues = map[string]string{
	"linear_workflow":    "2821109907456",
	"diamond_workflow":   "2821109907456",
	"tree_workflow":      "63340286662973277706162286946811886609896461828096",
	"mixed_dag_workflow": "63340286662973277706162286946811886609896461828096",
}

// testMathWorkflows runs each math workflow through the REST API for small
// and huge inputs and checks every step's exact value.
func testMathWorkflows(t *testing.T, s *suite) {
	t.Helper()
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	inputs := []*big.Int{big.NewInt(2), big.NewInt(6), big.NewInt(10), huge}
	for _, wf := range mathWorkflows {
		for _, n := range inputs {
			t.Run(wf.namespace+"/N="+n.String(), func(t *testing.T) {
				t.Parallel()
				c := s.sys.NextClient()
				created := createTask(t, c, wf.namespace, wf.name, evenNumberContext(n))
				require.Equal(t, len(wf.exponents), created.TotalSteps)
				task := waitTask(t, c, created.UUID, workflowTimeout)
				requireComplete(t, task)
				require.Equal(t, json.Number(n.String()), decodeNumbers(t, task.Context)["even_number"],
					"the stored context keeps N exactly")
				for step, exp := range wf.exponents {
					require.Equal(t, power(n, exp), stepResult(t, task, step)["value"], "step %s = N^%d", step, exp)
					require.Equal(t, 1, task.Step(step).Attempts, "step %s", step)
				}
				if n.Cmp(big.NewInt(6)) == 0 {
					require.Equal(t, workedValues[wf.namespace], stepResult(t, task, wf.final)["value"])
				}
			})
		}
	}
}

// sampleOrder returns the sample order of config/samples/contexts, decoded
// so that a test can change it.
func sampleOrder(t *testing.T) map[string]any {
	t.Helper()
	dir, err := harness.SamplesDir()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(dir, "contexts", "order_fulfillment.json"))
	require.NoError(t, err)
	var order map[string]any
	require.NoError(t, json.Unmarshal(data, &order))
	return order
}

// encode marshals v for a task context.
func encode(t *testing.T, v any) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return data
}

// testOrderFulfillment runs the sample order and checks the documented
// values of every step.
func testOrderFulfillment(t *testing.T, s *suite) {
	t.Helper()
	c := s.sys.NextClient()
	created := createTask(t, c, "order_fulfillment", "business_workflow", encode(t, sampleOrder(t)))
	task := waitTask(t, c, created.UUID, workflowTimeout)
	requireComplete(t, task)

	validated := stepResult(t, task, "validate_order")
	require.Equal(t, json.Number("209.97"), validated["order_total"])
	require.Equal(t, "complete", validated["validation_status"])
	require.Len(t, validated["validated_items"], 2)

	reserved := stepResult(t, task, "reserve_inventory")
	require.Equal(t, "confirmed", reserved["reservation_status"])
	require.NotEmpty(t, reserved["reservation_id"])

	paid := stepResult(t, task, "process_payment")
	require.Equal(t, json.Number("209.97"), paid["amount_charged"])
	require.Equal(t, json.Number("6.09"), paid["gateway_fee"])
	require.Equal(t, "completed", paid["payment_status"])
	require.Equal(t, "credit_card", paid["payment_method_used"])

	shipped := stepResult(t, task, "ship_order")
	require.Equal(t, "UPS Ground", shipped["carrier"])
	require.Equal(t, json.Number("8.99"), shipped["shipping_cost"])
	require.Equal(t, "label_created", shipped["shipping_status"])
	require.NotEmpty(t, shipped["tracking_number"])
	delivery, ok := shipped["estimated_delivery"].(string)
	require.True(t, ok, "estimated_delivery %v", shipped["estimated_delivery"])
	_, err := time.Parse(time.DateOnly, delivery)
	require.NoError(t, err, "estimated_delivery must be YYYY-MM-DD")
}
