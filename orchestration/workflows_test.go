package orchestration

import (
	"github.com/taskerops/tasker/orchestration/template"
)

// The five DAG shapes of WORKFLOWS.md, as template definitions. The test
// worker's default handler squares the product of its parents' values (a
// root squares even_number), which yields each workflow's documented
// results.

const evenNumberSchema = `{"type":"object","required":["even_number"],
 "properties":{"even_number":{"type":"integer","minimum":2,"multipleOf":2}}}`

// testStep is a compact step description: name and parents.
type testStep struct {
	name    string
	parents []string
}

func definition(namespace, name string, steps ...testStep) template.Definition {
	def := template.Definition{
		NamespaceName: namespace,
		Name:          name,
		Version:       "1.0.0",
		InputSchema:   []byte(evenNumberSchema),
		Steps:         make([]template.Step, len(steps)),
	}
	zero := 0
	for i, s := range steps {
		def.Steps[i] = template.Step{
			Name:      s.name,
			Handler:   template.Handler{Callable: namespace + "." + s.name},
			DependsOn: s.parents,
			// Fast, deterministic retries for tests.
			Retry: &template.RetryPolicy{BackoffBaseMs: 5, MaxBackoffMs: 50, JitterPercent: &zero},
		}
	}
	return def
}

func linearWorkflow() template.Definition {
	return definition("linear_workflow", "mathematical_sequence",
		testStep{"linear_step_1", nil},
		testStep{"linear_step_2", []string{"linear_step_1"}},
		testStep{"linear_step_3", []string{"linear_step_2"}},
		testStep{"linear_step_4", []string{"linear_step_3"}},
	)
}

func diamondWorkflow() template.Definition {
	return definition("diamond_workflow", "diamond_pattern",
		testStep{"diamond_start", nil},
		testStep{"diamond_branch_b", []string{"diamond_start"}},
		testStep{"diamond_branch_c", []string{"diamond_start"}},
		testStep{"diamond_end", []string{"diamond_branch_b", "diamond_branch_c"}},
	)
}

func treeWorkflow() template.Definition {
	return definition("tree_workflow", "hierarchical_tree",
		testStep{"tree_root", nil},
		testStep{"tree_branch_left", []string{"tree_root"}},
		testStep{"tree_branch_right", []string{"tree_root"}},
		testStep{"tree_leaf_d", []string{"tree_branch_left"}},
		testStep{"tree_leaf_e", []string{"tree_branch_left"}},
		testStep{"tree_leaf_f", []string{"tree_branch_right"}},
		testStep{"tree_leaf_g", []string{"tree_branch_right"}},
		testStep{"tree_final_convergence", []string{"tree_leaf_d", "tree_leaf_e", "tree_leaf_f", "tree_leaf_g"}},
	)
}

func mixedDAGWorkflow() template.Definition {
	return definition("mixed_dag_workflow", "complex_dag",
		testStep{"dag_init", nil},
		testStep{"dag_process_left", []string{"dag_init"}},
		testStep{"dag_process_right", []string{"dag_init"}},
		testStep{"dag_validate", []string{"dag_process_left", "dag_process_right"}},
		testStep{"dag_transform", []string{"dag_process_left"}},
		testStep{"dag_analyze", []string{"dag_process_right"}},
		testStep{"dag_finalize", []string{"dag_validate", "dag_transform", "dag_analyze"}},
	)
}

func orderFulfillmentWorkflow() template.Definition {
	def := definition("order_fulfillment", "business_workflow",
		testStep{"validate_order", nil},
		testStep{"reserve_inventory", []string{"validate_order"}},
		testStep{"process_payment", []string{"validate_order", "reserve_inventory"}},
		testStep{"ship_order", []string{"validate_order", "reserve_inventory", "process_payment"}},
	)
	def.InputSchema = []byte(`{"type":"object","required":["customer","items"]}`)
	return def
}
