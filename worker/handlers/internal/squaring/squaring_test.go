package squaring

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers/internal/steptest"
)

func TestEvenNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		context string
		want    string
		code    string
	}{
		{"six", `{"even_number": 6}`, "6", ""},
		{"huge", `{"even_number": 1000000000000000000000000000000}`, "1000000000000000000000000000000", ""},
		{"integral fraction", `{"even_number": 6.0}`, "6", ""},
		{"exponent", `{"even_number": 2e3}`, "2000", ""},
		{"odd", `{"even_number": 7}`, "", CodeValidation},
		{"negative", `{"even_number": -4}`, "", CodeValidation},
		{"fraction", `{"even_number": 6.5}`, "", CodeValidation},
		{"string", `{"even_number": "6"}`, "", CodeValidation},
		{"object", `{"even_number": {}}`, "", CodeValidation},
		{"missing", `{}`, "", CodeMissingContextField},
		{"null", `{"even_number": null}`, "", CodeMissingContextField},
		{"context not an object", `[6]`, "", CodeMissingContextField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			step := steptest.New(t, steptest.Options{Context: json.RawMessage(tt.context)})
			got, err := EvenNumber(step)
			if tt.code != "" {
				steptest.RequireStepError(t, err, tt.code, false)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.String())
		})
	}
}

func TestParentValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		result    string
		want      string
		code      string
		retryable bool
	}{
		{"decimal string", `{"value": "1296"}`, "1296", "", false},
		{"number", `{"value": 1296}`, "1296", "", false},
		{"no result", ``, "", CodeMissingDependency, true},
		{"null result", `null`, "", CodeMissingDependency, true},
		{"no value", `{"other": 1}`, "", CodeMissingDependency, true},
		{"not a decimal", `{"value": "12x"}`, "", CodeInvalidDependency, false},
		{"fraction", `{"value": 1.5}`, "", CodeInvalidDependency, false},
		{"not an object", `[1]`, "", CodeInvalidDependency, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			deps := map[string]any{}
			if tt.result != "" {
				deps["parent"] = json.RawMessage(tt.result)
			}
			got, err := ParentValue(steptest.New(t, steptest.Options{Dependencies: deps}), "parent")
			if tt.code != "" {
				steptest.RequireStepError(t, err, tt.code, tt.retryable)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.String())
		})
	}
}

func TestDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		init string
		want time.Duration
		code string
	}{
		{"no initialization", ``, 0, ""},
		{"other keys", `{"mode": "fast"}`, 0, ""},
		{"delay", `{"delay_ms": 250}`, 250 * time.Millisecond, ""},
		{"maximum", `{"delay_ms": 600000}`, MaxDelay, ""},
		{"above maximum", `{"delay_ms": 600001}`, 0, CodeInvalidInit},
		{"huge", `{"delay_ms": 9223372036854775807}`, 0, CodeInvalidInit},
		{"negative", `{"delay_ms": -1}`, 0, CodeInvalidInit},
		{"not a number", `{"delay_ms": "10"}`, 0, CodeInvalidInit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := steptest.Options{}
			if tt.init != "" {
				opts.Initialization = json.RawMessage(tt.init)
			}
			got, err := Delay(steptest.New(t, opts))
			if tt.code != "" {
				steptest.RequireStepError(t, err, tt.code, false)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestHandlerCall(t *testing.T) {
	t.Parallel()
	root := New(Step{Name: "root", Callable: "ns.Root"})
	child := New(Step{Name: "child", Callable: "ns.Child", Parents: []string{"a", "b"}})
	deadline, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	t.Cleanup(cancel)
	tests := []struct {
		name    string
		handler *Handler
		opts    steptest.Options
		ctx     context.Context
		want    Result
		wantErr error
	}{
		{
			"root squares even_number", root,
			steptest.Options{Context: map[string]int{"even_number": 6}},
			context.Background(),
			Result{Value: "36", Step: "root", Operation: Operation, Inputs: []string{ContextField}},
			nil,
		},
		{
			"child squares the product of its parents", child,
			steptest.Options{Dependencies: map[string]any{"a": Result{Value: "2"}, "b": Result{Value: "3"}}},
			context.Background(),
			Result{Value: "36", Step: "child", Operation: Operation, Inputs: []string{"a", "b"}},
			nil,
		},
		{
			"deadline during the delay", root,
			steptest.Options{Context: map[string]int{"even_number": 6}, Initialization: map[string]int{"delay_ms": 600000}},
			deadline,
			Result{},
			context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := tt.handler.Call(tt.ctx, steptest.New(t, tt.opts))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, res.Result)
			require.Equal(t, 2, res.Metadata["value_digits"])
		})
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	r := worker.NewRegistry()
	steps := []Step{{Name: "a", Callable: "ns.A"}, {Name: "b", Callable: "ns.B", Parents: []string{"a"}}}
	require.NoError(t, Register(r, steps))
	require.Equal(t, []string{"ns.A", "ns.B"}, r.Callables())
	require.ErrorContains(t, Register(r, steps[1:]), `step "b"`)
}
