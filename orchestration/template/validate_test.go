package template

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// validateCase mutates a valid diamond definition and lists the problems expected,
// in order; each want Message must be contained in the reported message.
type validateCase struct {
	name   string
	mutate func(d *Definition)
	want   []Problem
}

func runValidateCases(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := diamond()
			tc.mutate(&d)
			err := d.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			got := problemsOf(t, err)
			require.Len(t, got, len(tc.want), "problems: %v", got)
			for i, want := range tc.want {
				require.Equal(t, want.Field, got[i].Field, "problem %d: %v", i, got[i])
				require.Contains(t, got[i].Message, want.Message, "problem %d", i)
			}
		})
	}
}

func TestValidate_TopLevelFields(t *testing.T) {
	t.Parallel()
	runValidateCases(t, []validateCase{
		{"accepts the diamond", func(*Definition) {}, nil},
		{
			"requires namespaceName", func(d *Definition) { d.NamespaceName = "" },
			[]Problem{{"namespaceName", "is required"}},
		},
		{"accepts a 40-byte namespaceName", func(d *Definition) { d.NamespaceName = strings.Repeat("n", 40) }, nil},
		{
			"explains the 40-byte namespaceName limit", func(d *Definition) { d.NamespaceName = strings.Repeat("n", 41) },
			[]Problem{{"namespaceName", `at most 40 bytes, got 41: it names the PGMQ queue "<ns>_queue"`}},
		},
		{
			"rejects an uppercase namespaceName", func(d *Definition) { d.NamespaceName = "Linear" },
			[]Problem{{"namespaceName", `"Linear" must contain only lowercase letters, digits and underscores`}},
		},
		{
			"rejects a namespaceName starting with a digit", func(d *Definition) { d.NamespaceName = "1ns" },
			[]Problem{{"namespaceName", "must not start with a digit"}},
		},
		{"requires name", func(d *Definition) { d.Name = "" }, []Problem{{"name", "is required"}}},
		{"accepts dots and dashes in name", func(d *Definition) { d.Name = "0_order.v2-fast" }, nil},
		{
			"rejects a name starting with a dash", func(d *Definition) { d.Name = "-x" },
			[]Problem{{"name", `"-x" must contain only lowercase letters`}},
		},
		{
			"rejects a 129-byte name", func(d *Definition) { d.Name = strings.Repeat("a", 129) },
			[]Problem{{"name", "must be at most 128 bytes, got 129"}},
		},
		{"accepts prerelease and build", func(d *Definition) { d.Version = "1.2.3-rc.1+build.5" }, nil},
		{"requires version", func(d *Definition) { d.Version = "" }, []Problem{{"version", "is required"}}},
		{"accepts caller_provided", func(d *Definition) { d.IdentityStrategy = IdentityCallerProvided }, nil},
		{
			"rejects an unknown identityStrategy", func(d *Definition) { d.IdentityStrategy = "random" },
			[]Problem{{"identityStrategy", `must be one of "strict", "caller_provided", "always_unique", got "random"`}},
		},
		{
			"reports every problem at once", func(d *Definition) { d.NamespaceName, d.Name, d.Version = "", "", "" },
			[]Problem{{"namespaceName", "is required"}, {"name", "is required"}, {"version", "is required"}},
		},
	})
}

func TestValidate_Version(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"1.0", "v1.0.0", "1.0.0-", "01.0.0", "1", "1.0.0.0", "1.0.0+", "1.0.x"} {
		t.Run("rejects "+version, func(t *testing.T) {
			t.Parallel()
			d := diamond()
			d.Version = version
			got := problemsOf(t, d.Validate())
			require.Equal(t, []Problem{{Field: "version", Message: `"` + version +
				`" is not a semantic version MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] such as 1.0.0 ` +
				`(three numeric parts without leading zeros, no leading "v")`}}, got)
		})
	}
}

func TestValidate_InputSchema(t *testing.T) {
	t.Parallel()
	schema := func(raw string) func(d *Definition) {
		return func(d *Definition) { d.InputSchema = json.RawMessage(raw) }
	}
	runValidateCases(t, []validateCase{
		{"accepts no schema", schema(""), nil},
		{"accepts JSON null", schema("null"), nil},
		{"accepts a draft-07 schema", schema(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`), nil},
		{"accepts internal references", schema(`{"$ref":"#/$defs/n","$defs":{"n":{"type":"integer"}}}`), nil},
		{
			"rejects a schema that breaks the metaschema", schema(`{"type": 5}`),
			[]Problem{{"inputSchema", "is not a valid JSON Schema: $.type: must be"}},
		},
		{
			"rejects a non-object schema", schema(`[1]`),
			[]Problem{{"inputSchema", "must be a JSON object, got array"}},
		},
		{
			"rejects a boolean schema", schema(`true`),
			[]Problem{{"inputSchema", "must be a JSON object, got boolean"}},
		},
		{"rejects invalid JSON", schema(`{"type":`), []Problem{{"inputSchema", "is not valid JSON"}}},
		{"rejects trailing data", schema(`{} {}`), []Problem{{"inputSchema", "is not valid JSON"}}},
		{
			"rejects an RE2-incompatible pattern", schema(`{"pattern":"(?=x)"}`),
			[]Problem{{"inputSchema", "$.pattern: must be a valid regex"}},
		},
		{
			"refuses external references", schema(`{"$ref":"https://example.com/s.json"}`),
			[]Problem{{"inputSchema", `cannot resolve reference to "https://example.com/s.json": external references are not supported`}},
		},
	})
}

func TestValidate_Steps(t *testing.T) {
	t.Parallel()
	runValidateCases(t, []validateCase{
		{
			"requires at least one step", func(d *Definition) { d.Steps = nil },
			[]Problem{{"steps", "at least one step is required"}},
		},
		{"rejects more than 500 steps", func(d *Definition) {
			d.Steps = make([]Step, 501)
			for i := range d.Steps {
				d.Steps[i] = Step{Name: fmt.Sprintf("step_%d", i), Handler: Handler{Callable: "h"}}
			}
		}, []Problem{{"steps", "must have at most 500 steps, got 501"}}},
		{"requires a step name", func(d *Definition) { d.Steps[1].Name = "" }, []Problem{
			{"steps[1].name", "is required"},
			{"steps[3].dependsOn[0]", `unknown step "diamond_branch_b"`},
		}},
		{"accepts a 63-byte step name", func(d *Definition) { d.Steps[3].Name = strings.Repeat("s", 63) }, nil},
		{
			"rejects a 64-byte step name", func(d *Definition) { d.Steps[3].Name = strings.Repeat("s", 64) },
			[]Problem{{"steps[3].name", "must be at most 63 bytes, got 64"}},
		},
		{
			"rejects a step name with a dash", func(d *Definition) { d.Steps[3].Name = "a-b" },
			[]Problem{{"steps[3].name", `"a-b" must contain only lowercase letters, digits and underscores`}},
		},
		{"reports duplicate step names", func(d *Definition) { d.Steps[2].Name = "diamond_branch_b" }, []Problem{
			{"steps[2].name", `duplicate step name "diamond_branch_b" (also steps[1])`},
			{"steps[3].dependsOn[1]", `unknown step "diamond_branch_c"`},
		}},
		{
			"rejects a negative timeout", func(d *Definition) { d.Steps[0].TimeoutSeconds = -1 },
			[]Problem{{"steps[0].timeoutSeconds", "must be between 1 and 86400, got -1"}},
		},
		{
			"rejects a timeout over a day", func(d *Definition) { d.Steps[0].TimeoutSeconds = 86401 },
			[]Problem{{"steps[0].timeoutSeconds", "must be between 1 and 86400, got 86401"}},
		},
		{"accepts a one-day timeout", func(d *Definition) { d.Steps[0].TimeoutSeconds = 86400 }, nil},
	})
}

func TestValidate_Handler(t *testing.T) {
	t.Parallel()
	callable := func(c string) func(d *Definition) {
		return func(d *Definition) { d.Steps[0].Handler.Callable = c }
	}
	initialization := func(raw string) func(d *Definition) {
		return func(d *Definition) { d.Steps[0].Handler.Initialization = json.RawMessage(raw) }
	}
	runValidateCases(t, []validateCase{
		{"accepts dotted, Ruby and path callables", callable("Diamond::Start/handlers.Step_1"), nil},
		{"requires a callable", callable(""), []Problem{{"steps[0].handler.callable", "is required"}}},
		{
			"rejects a 256-byte callable", callable(strings.Repeat("c", 256)),
			[]Problem{{"steps[0].handler.callable", "must be at most 255 bytes, got 256"}},
		},
		{"rejects an empty segment", callable("a..b"), []Problem{{"steps[0].handler.callable", `"a..b" must be identifiers`}}},
		{"rejects a leading digit", callable("1abc"), []Problem{{"steps[0].handler.callable", `"1abc" must be identifiers`}}},
		{"rejects a trailing separator", callable("a::"), []Problem{{"steps[0].handler.callable", `"a::" must be identifiers`}}},
		{"accepts an object initialization", initialization(`{"factor": 2}`), nil},
		{
			"rejects an array initialization", initialization(`[1]`),
			[]Problem{{"steps[0].handler.initialization", "must be a JSON object, got array"}},
		},
		{
			"rejects a string initialization", initialization(`"x"`),
			[]Problem{{"steps[0].handler.initialization", "must be a JSON object, got string"}},
		},
		{
			"rejects invalid JSON initialization", initialization(`{`),
			[]Problem{{"steps[0].handler.initialization", "is not valid JSON"}},
		},
	})
}

func TestValidate_Retry(t *testing.T) {
	t.Parallel()
	retry := func(p RetryPolicy) func(d *Definition) {
		return func(d *Definition) { d.Steps[1].Retry = &p }
	}
	runValidateCases(t, []validateCase{
		{"accepts zero jitter", retry(RetryPolicy{JitterPercent: new(0)}), nil},
		{"accepts the limits", retry(RetryPolicy{MaxAttempts: 100, BackoffBaseMs: 86_400_000, JitterPercent: new(100)}), nil},
		{"accepts a single attempt", retry(RetryPolicy{Retryable: new(false), MaxAttempts: 1}), nil},
		{
			"rejects negative maxAttempts", retry(RetryPolicy{MaxAttempts: -1}),
			[]Problem{{"steps[1].retry.maxAttempts", "must be between 1 and 100, got -1"}},
		},
		{
			"rejects 101 maxAttempts", retry(RetryPolicy{MaxAttempts: 101}),
			[]Problem{{"steps[1].retry.maxAttempts", "must be between 1 and 100, got 101"}},
		},
		{
			"rejects an unknown backoff", retry(RetryPolicy{Backoff: "fibonacci"}),
			[]Problem{{"steps[1].retry.backoff", `must be one of "exponential", "linear", "constant", got "fibonacci"`}},
		},
		{
			"rejects a negative base", retry(RetryPolicy{BackoffBaseMs: -1, MaxBackoffMs: 10}),
			[]Problem{{"steps[1].retry.backoffBaseMs", "must be between 0 and 86400000, got -1"}},
		},
		{"rejects a base over a day", retry(RetryPolicy{BackoffBaseMs: 86_400_001}), []Problem{
			{"steps[1].retry.backoffBaseMs", "must be between 0 and 86400000, got 86400001"},
			{"steps[1].retry.maxBackoffMs", "must be at most 86400000, got 86400001"},
		}},
		{
			"rejects a cap below the base", retry(RetryPolicy{BackoffBaseMs: 5000, MaxBackoffMs: 100}),
			[]Problem{{"steps[1].retry.maxBackoffMs", "must be at least backoffBaseMs (5000), got 100"}},
		},
		{
			"rejects negative jitter", retry(RetryPolicy{JitterPercent: new(-1)}),
			[]Problem{{"steps[1].retry.jitterPercent", "must be between 0 and 100, got -1"}},
		},
		{
			"rejects jitter over 100", retry(RetryPolicy{JitterPercent: new(101)}),
			[]Problem{{"steps[1].retry.jitterPercent", "must be between 0 and 100, got 101"}},
		},
	})
}
