// Package squaringtest is the shared test suite of the four math example
// workflows: each workflow's tests describe their steps and the power of N
// each step must produce, and Suite checks values, errors and the delay_ms
// hook through the workflow's own Register.
package squaringtest

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/internal/squaring"
	"github.com/taskerops/tasker/worker/handlers/internal/steptest"
)

// Workflow describes a math workflow under test.
type Workflow struct {
	// Register is the workflow package's Register.
	Register func(*worker.Registry) error
	// Steps are the workflow's steps, in topological order.
	Steps []squaring.Step
	// Exponents gives, by step name, the power of N the step's value is.
	Exponents map[string]int64
}

// Registry returns a registry holding the workflow's handlers.
func (w Workflow) Registry(t testing.TB) *worker.Registry {
	t.Helper()
	r := worker.NewRegistry()
	require.NoError(t, w.Register(r))
	return r
}

// Links returns the workflow's steps as steptest links.
func (w Workflow) Links() []steptest.Link {
	links := make([]steptest.Link, 0, len(w.Steps))
	for _, s := range w.Steps {
		links = append(links, steptest.Link{Name: s.Name, Callable: s.Callable})
	}
	return links
}

// Values runs every step for even_number n (a JSON number literal) and
// returns each step's value by step name.
func (w Workflow) Values(t testing.TB, n string) map[string]string {
	t.Helper()
	results := steptest.Chain(t, w.Registry(t), json.RawMessage(`{"even_number": `+n+`}`), w.Links())
	values := make(map[string]string, len(results))
	for name, raw := range results {
		var res squaring.Result
		require.NoError(t, json.Unmarshal(raw, &res))
		require.Equal(t, name, res.Step)
		require.Equal(t, squaring.Operation, res.Operation)
		values[name] = res.Value
	}
	return values
}

// Suite runs the checks every math workflow shares.
func Suite(t *testing.T, w Workflow) {
	t.Helper()
	t.Run("every step computes its power of N exactly", func(t *testing.T) {
		t.Parallel()
		checkPowers(t, w)
	})
	t.Run("registering twice is refused", func(t *testing.T) {
		t.Parallel()
		r := w.Registry(t)
		require.Error(t, w.Register(r))
		require.Len(t, r.Callables(), len(w.Steps))
	})
	t.Run("root errors", func(t *testing.T) {
		t.Parallel()
		checkRootErrors(t, w)
	})
	t.Run("a missing parent is a retryable MISSING_DEPENDENCY", func(t *testing.T) {
		t.Parallel()
		checkMissingParents(t, w)
	})
	t.Run("delay_ms", func(t *testing.T) {
		t.Parallel()
		checkDelay(t, w)
	})
}

// checkPowers compares every step's value with N^exponent for several N.
func checkPowers(t *testing.T, w Workflow) {
	t.Helper()
	for _, n := range []string{"2", "6", "1000000000000000000000000000000", "1e30", "6.0"} {
		values := w.Values(t, n)
		base, ok := new(big.Rat).SetString(n)
		require.True(t, ok)
		for _, s := range w.Steps {
			exp, ok := w.Exponents[s.Name]
			require.True(t, ok, "no exponent for %s", s.Name)
			want := new(big.Int).Exp(base.Num(), big.NewInt(exp), nil)
			require.Equal(t, want.String(), values[s.Name], "step %s, N=%s", s.Name, n)
		}
	}
}

// checkRootErrors checks the root step's context checks.
func checkRootErrors(t *testing.T, w Workflow) {
	t.Helper()
	root := w.Steps[0]
	r := w.Registry(t)
	tests := []struct {
		name    string
		context string
		code    string
	}{
		{"odd", `{"even_number": 7}`, squaring.CodeValidation},
		{"huge odd", `{"even_number": 1000000000000000000000000000001}`, squaring.CodeValidation},
		{"fraction", `{"even_number": 6.5}`, squaring.CodeValidation},
		{"string", `{"even_number": "6"}`, squaring.CodeValidation},
		{"below two", `{"even_number": 0}`, squaring.CodeValidation},
		{"missing", `{"other": 6}`, squaring.CodeMissingContextField},
		{"null", `{"even_number": null}`, squaring.CodeMissingContextField},
		{"no context", `null`, squaring.CodeMissingContextField},
	}
	for _, tt := range tests {
		step := steptest.New(t, steptest.Options{Name: root.Name, Callable: root.Callable, Context: json.RawMessage(tt.context)})
		_, err := steptest.Call(t, r, context.Background(), step)
		steptest.RequireStepError(t, err, tt.code, false)
	}
	step := steptest.New(t, steptest.Options{Name: root.Name, Callable: root.Callable, Context: json.RawMessage(`{"even_number": 9}`)})
	_, err := steptest.Call(t, r, context.Background(), step)
	require.ErrorContains(t, err, "number must be even")
}

// checkMissingParents runs every non-root step with one parent missing.
func checkMissingParents(t *testing.T, w Workflow) {
	r := w.Registry(t)
	for _, s := range w.Steps {
		for _, missing := range s.Parents {
			deps := map[string]any{}
			for _, p := range s.Parents {
				if p != missing {
					deps[p] = squaring.Result{Value: "36", Step: p, Operation: squaring.Operation}
				}
			}
			step := steptest.New(t, steptest.Options{
				Name: s.Name, Callable: s.Callable,
				Context: map[string]int{"even_number": 6}, Dependencies: deps,
			})
			_, err := steptest.Call(t, r, context.Background(), step)
			steptest.RequireStepError(t, err, squaring.CodeMissingDependency, true)
			require.ErrorContains(t, err, missing)
		}
	}
}

// checkDelay checks that every step waits delay_ms and stops when its
// context ends.
func checkDelay(t *testing.T, w Workflow) {
	r := w.Registry(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, s := range w.Steps {
		deps := map[string]any{}
		for _, p := range s.Parents {
			deps[p] = squaring.Result{Value: "36"}
		}
		opts := steptest.Options{
			Name: s.Name, Callable: s.Callable,
			Context: map[string]int{"even_number": 6}, Dependencies: deps,
			Initialization: map[string]int{"delay_ms": 20},
		}
		start := time.Now()
		_, err := steptest.Call(t, r, context.Background(), steptest.New(t, opts))
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, s.Name)

		opts.Initialization = map[string]int{"delay_ms": 600000}
		start = time.Now()
		_, err = steptest.Call(t, r, cancelled, steptest.New(t, opts))
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, time.Since(start), 5*time.Second, s.Name)
	}
}
