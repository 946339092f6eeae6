package template

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base := diamond().Fingerprint()

	t.Run("is hex sha256 and repeatable", func(t *testing.T) {
		t.Parallel()
		require.Regexp(t, `^[0-9a-f]{64}$`, base)
		require.Equal(t, base, diamond().Fingerprint())
	})

	same := []struct {
		name   string
		mutate func(d *Definition)
	}{
		{"ignores key order and whitespace in inputSchema", func(d *Definition) {
			d.InputSchema = json.RawMessage(`{ "properties" : { "even_number" : { "multipleOf":2, "minimum":2,
				"type":"integer" } }, "required" : [ "even_number" ], "type" : "object" }`)
		}},
		{"treats explicit defaults like omitted ones", func(d *Definition) {
			d.IdentityStrategy = IdentityStrict
			d.Steps[0].TimeoutSeconds = DefaultTimeoutSeconds
			d.Steps[0].Retry = &RetryPolicy{
				Retryable: new(true), MaxAttempts: 3, Backoff: BackoffExponential,
				BackoffBaseMs: 1000, MaxBackoffMs: 30000, JitterPercent: new(10),
			}
		}},
	}
	for _, tc := range same {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := diamond()
			tc.mutate(&d)
			require.Equal(t, base, d.Fingerprint())
		})
	}

	different := []struct {
		name   string
		mutate func(d *Definition)
	}{
		{"changes with a step's callable", func(d *Definition) { d.Steps[2].Handler.Callable = "other.Handler" }},
		{"changes with a step's timeout", func(d *Definition) { d.Steps[2].TimeoutSeconds = 30 }},
		{"changes with a dependency", func(d *Definition) { d.Steps[3].DependsOn = []string{"diamond_branch_b"} }},
		{"changes with the schema", func(d *Definition) { d.InputSchema = json.RawMessage(`{"type":"object"}`) }},
		{"changes with initialization", func(d *Definition) { d.Steps[0].Handler.Initialization = json.RawMessage(`{"a":1}`) }},
		{"changes with invalid raw JSON", func(d *Definition) { d.Steps[0].Handler.Initialization = json.RawMessage(`{`) }},
		{"changes with the version", func(d *Definition) { d.Version = "1.0.1" }},
	}
	for _, tc := range different {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := diamond()
			tc.mutate(&d)
			require.NotEqual(t, base, d.Fingerprint())
		})
	}

	t.Run("ignores key order in initialization", func(t *testing.T) {
		t.Parallel()
		a, b := diamond(), diamond()
		a.Steps[0].Handler.Initialization = json.RawMessage(`{"x":1,"y":{"b":2,"a":[1,2]}}`)
		b.Steps[0].Handler.Initialization = json.RawMessage(`{ "y": {"a": [1, 2], "b": 2}, "x": 1 }`)
		require.Equal(t, a.Fingerprint(), b.Fingerprint())
	})
}
