package template

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidate_DependsOn(t *testing.T) {
	t.Parallel()
	runValidateCases(t, []validateCase{
		{
			"reports an unknown dependency", func(d *Definition) { d.Steps[3].DependsOn = []string{"diamond_branch_b", "nope"} },
			[]Problem{{"steps[3].dependsOn[1]", `unknown step "nope"`}},
		},
		{"reports a duplicate dependency", func(d *Definition) {
			d.Steps[3].DependsOn = []string{"diamond_branch_b", "diamond_branch_c", "diamond_branch_b"}
		}, []Problem{{"steps[3].dependsOn[2]", `duplicate dependency "diamond_branch_b" (also dependsOn[0])`}}},
		{"reports a self-reference at the entry and as a cycle", func(d *Definition) {
			d.Steps[1].DependsOn = []string{"diamond_start", "diamond_branch_b"}
		}, []Problem{
			{"steps[1].dependsOn[1]", `step "diamond_branch_b" cannot depend on itself`},
			{"steps", "dependency cycle: diamond_branch_b → diamond_branch_b"},
		}},
	})
}

func TestValidate_Cycles(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		order []string
		deps  map[string][]string
		want  []Problem
	}{
		{
			name:  "three-cycle starts at the first step declared on it",
			order: []string{"root", "c", "a", "b"},
			deps:  map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"root", "a"}},
			want:  []Problem{{"steps", "dependency cycle: c → a → b → c"}},
		},
		{
			name:  "self-reference",
			order: []string{"a"},
			deps:  map[string][]string{"a": {"a"}},
			want: []Problem{
				{"steps[0].dependsOn[0]", `step "a" cannot depend on itself`},
				{"steps", "dependency cycle: a → a"},
			},
		},
		{
			name:  "two disjoint cycles",
			order: []string{"a", "b", "c", "d", "e"},
			deps:  map[string][]string{"a": {"b"}, "b": {"a"}, "c": {"e"}, "d": {"c"}, "e": {"d"}},
			want: []Problem{
				{"steps", "dependency cycle: a → b → a"},
				{"steps", "dependency cycle: c → e → d → c"},
			},
		},
		{
			name:  "overlapping cycles are one problem with the shortest path",
			order: []string{"a", "b", "c"},
			deps:  map[string][]string{"a": {"b", "c"}, "b": {"c"}, "c": {"a"}},
			want:  []Problem{{"steps", "dependency cycle: a → c → a"}},
		},
		{
			name:  "unknown edges are not cycles",
			order: []string{"a", "b"},
			deps:  map[string][]string{"a": {"nope"}, "b": {"a"}},
			want:  []Problem{{"steps[0].dependsOn[0]", `unknown step "nope"`}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := diamond()
			d.Steps = chain(tc.order, tc.deps)
			require.Equal(t, tc.want, problemsOf(t, d.Validate()))
		})
	}
}

func TestValidationError_Error(t *testing.T) {
	t.Parallel()
	d := diamond()
	d.Version = ""
	d.Steps[1].DependsOn = []string{"nope"}
	require.EqualError(t, d.Validate(), `version: is required; steps[1].dependsOn[0]: unknown step "nope"`)
}

func TestRoots(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"diamond_start"}, diamond().Roots())
	d := diamond()
	d.Steps = chain([]string{"x", "y", "z"}, map[string][]string{"y": {"x"}})
	require.Equal(t, []string{"x", "z"}, d.Roots())
}

func TestTopologicalOrder(t *testing.T) {
	t.Parallel()

	t.Run("orders the diamond", func(t *testing.T) {
		t.Parallel()
		got, err := diamond().TopologicalOrder()
		require.NoError(t, err)
		require.Equal(t, []string{"diamond_start", "diamond_branch_b", "diamond_branch_c", "diamond_end"}, got)
	})

	t.Run("breaks ties by declaration order", func(t *testing.T) {
		t.Parallel()
		d := diamond()
		d.Steps[1], d.Steps[2] = d.Steps[2], d.Steps[1]
		got, err := d.TopologicalOrder()
		require.NoError(t, err)
		require.Equal(t, []string{"diamond_start", "diamond_branch_c", "diamond_branch_b", "diamond_end"}, got)
	})

	t.Run("puts dependencies first whatever the declaration order", func(t *testing.T) {
		t.Parallel()
		d := diamond()
		d.Steps = chain([]string{"end", "mid", "late_root", "start"},
			map[string][]string{"end": {"mid"}, "mid": {"start"}})
		got, err := d.TopologicalOrder()
		require.NoError(t, err)
		require.Equal(t, []string{"late_root", "start", "mid", "end"}, got)
	})

	errorCases := []struct {
		name  string
		order []string
		deps  map[string][]string
		want  string
	}{
		{"fails on a cycle", []string{"a", "b"}, map[string][]string{"a": {"b"}, "b": {"a"}}, "dependency cycle: a → b → a"},
		{"fails on an unknown dependency", []string{"a"}, map[string][]string{"a": {"nope"}}, `step "a" depends on unknown step "nope"`},
		{"fails on a duplicate name", []string{"a", "a"}, nil, `duplicate step name "a" (steps[0] and steps[1])`},
		{"fails on a missing name", []string{""}, nil, "steps[0] has no name"},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := diamond()
			d.Steps = chain(tc.order, tc.deps)
			_, err := d.TopologicalOrder()
			require.EqualError(t, err, tc.want)
		})
	}
}
