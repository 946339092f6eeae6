package handlers

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker"
)

func TestRegisterAll(t *testing.T) {
	t.Parallel()
	r := worker.NewRegistry()
	require.NoError(t, RegisterAll(r))

	perNamespace := map[string]int{}
	for _, callable := range r.Callables() {
		ns, _, ok := strings.Cut(callable, ".")
		require.True(t, ok, callable)
		perNamespace[ns]++
	}
	tests := []struct {
		namespace string
		handlers  int
	}{
		{"linear_workflow", 4},
		{"diamond_workflow", 4},
		{"tree_workflow", 8},
		{"mixed_dag_workflow", 7},
		{"order_fulfillment", 4},
	}
	for _, tt := range tests {
		t.Run(tt.namespace, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.handlers, perNamespace[tt.namespace])
			require.Contains(t, Namespaces(), tt.namespace)
		})
	}
	require.Len(t, r.Callables(), 27)
	require.Len(t, Namespaces(), len(tests))
}

func TestRegisterAllTwiceFails(t *testing.T) {
	t.Parallel()
	r := worker.NewRegistry()
	require.NoError(t, RegisterAll(r))
	require.ErrorContains(t, RegisterAll(r), "linear_workflow")
}
