package template

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithDefaults(t *testing.T) {
	t.Parallel()

	t.Run("fills every optional value", func(t *testing.T) {
		t.Parallel()
		got := diamond().WithDefaults()
		require.Equal(t, IdentityStrict, got.IdentityStrategy)
		for _, step := range got.Steps {
			require.Equal(t, DefaultTimeoutSeconds, step.TimeoutSeconds)
			require.Equal(t, &RetryPolicy{
				Retryable:     new(true),
				MaxAttempts:   DefaultMaxAttempts,
				Backoff:       BackoffExponential,
				BackoffBaseMs: DefaultBackoffBaseMs,
				MaxBackoffMs:  DefaultMaxBackoffMs,
				JitterPercent: new(DefaultJitterPercent),
			}, step.Retry)
		}
	})

	t.Run("keeps explicit values", func(t *testing.T) {
		t.Parallel()
		d := diamond()
		d.IdentityStrategy = IdentityAlwaysUnique
		d.Steps[0].TimeoutSeconds = 5
		d.Steps[0].Retry = &RetryPolicy{
			Retryable: new(false), MaxAttempts: 7, Backoff: BackoffLinear,
			BackoffBaseMs: 200, MaxBackoffMs: 900, JitterPercent: new(0),
		}
		got := d.WithDefaults()
		require.Equal(t, IdentityAlwaysUnique, got.IdentityStrategy)
		require.Equal(t, 5, got.Steps[0].TimeoutSeconds)
		require.Equal(t, d.Steps[0].Retry, got.Steps[0].Retry)
	})

	t.Run("max backoff defaults to at least the base", func(t *testing.T) {
		t.Parallel()
		d := diamond()
		d.Steps[0].Retry = &RetryPolicy{BackoffBaseMs: 60000}
		require.Equal(t, 60000, d.WithDefaults().Steps[0].Retry.MaxBackoffMs)
		require.NoError(t, d.Validate())
	})

	t.Run("JSON null raw values become nil", func(t *testing.T) {
		t.Parallel()
		d := diamond()
		d.InputSchema = json.RawMessage(" null ")
		d.Steps[0].Handler.Initialization = json.RawMessage("null")
		got := d.WithDefaults()
		require.Nil(t, got.InputSchema)
		require.Nil(t, got.Steps[0].Handler.Initialization)
	})

	t.Run("returns a deep copy", func(t *testing.T) {
		t.Parallel()
		d := diamond()
		d.Steps[0].Retry = &RetryPolicy{Retryable: new(true), JitterPercent: new(5)}
		d.Steps[0].Handler.Initialization = json.RawMessage(`{"a":1}`)
		got := d.WithDefaults()
		got.InputSchema[0] = 'X'
		got.Steps[0].Name = "changed"
		got.Steps[0].Handler.Initialization[0] = 'X'
		got.Steps[3].DependsOn[0] = "changed"
		*got.Steps[0].Retry.Retryable = false
		*got.Steps[0].Retry.JitterPercent = 50
		got.Steps[0].Retry.MaxAttempts = 9
		require.Equal(t, diamond().InputSchema, d.InputSchema)
		require.Equal(t, "diamond_start", d.Steps[0].Name)
		require.JSONEq(t, `{"a":1}`, string(d.Steps[0].Handler.Initialization))
		require.Equal(t, "diamond_branch_b", d.Steps[3].DependsOn[0])
		require.Equal(t, &RetryPolicy{Retryable: new(true), JitterPercent: new(5)}, d.Steps[0].Retry)
	})
}
