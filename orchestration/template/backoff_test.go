package template

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryPolicyDelay(t *testing.T) {
	t.Parallel()
	fixed := func(u float64) func() float64 { return func() float64 { return u } }
	policy := func(kind BackoffKind, jitter int) RetryPolicy {
		return RetryPolicy{Backoff: kind, BackoffBaseMs: 1000, MaxBackoffMs: 30000, JitterPercent: &jitter}
	}
	cases := []struct {
		name    string
		policy  RetryPolicy
		attempt int
		rnd     func() float64
		want    time.Duration
	}{
		{"exponential first retry waits the base", policy(BackoffExponential, 10), 1, nil, time.Second},
		{"exponential doubles", policy(BackoffExponential, 10), 4, nil, 8 * time.Second},
		{"exponential is capped", policy(BackoffExponential, 10), 6, nil, 30 * time.Second},
		{"exponential survives a huge attempt", policy(BackoffExponential, 10), math.MaxInt, nil, 30 * time.Second},
		{"exponential huge attempt with full jitter", policy(BackoffExponential, 100), math.MaxInt, fixed(0.5), 30 * time.Second},
		{"exponential huge attempt jitter at the floor", policy(BackoffExponential, 100), 5000, fixed(0), 0},
		{"linear grows by the base", policy(BackoffLinear, 10), 3, nil, 3 * time.Second},
		{"linear is capped", policy(BackoffLinear, 10), 31, nil, 30 * time.Second},
		{"linear survives a huge attempt", policy(BackoffLinear, 10), math.MaxInt, nil, 30 * time.Second},
		{"constant waits the base", policy(BackoffConstant, 10), 7, nil, time.Second},
		{"attempt below one counts as one", policy(BackoffExponential, 10), 0, nil, time.Second},
		{"jitter at the low end", policy(BackoffExponential, 10), 2, fixed(0), 1800 * time.Millisecond},
		{"jitter in the middle leaves the delay", policy(BackoffLinear, 10), 2, fixed(0.5), 2 * time.Second},
		{"jitter near the high end", policy(BackoffConstant, 10), 1, fixed(0.75), 1050 * time.Millisecond},
		{"jitter below the cap is kept", policy(BackoffExponential, 50), 5, fixed(0.99), 23_840 * time.Millisecond},
		{"jitter above the cap is capped", policy(BackoffExponential, 100), 5, fixed(0.99), 30 * time.Second},
		{"jitter spreads the uncapped delay", policy(BackoffExponential, 50), 6, fixed(0), 16 * time.Second},
		{"fractional milliseconds are kept", policy(BackoffConstant, 10), 1, fixed(0.123456), 924_691_200},
		{"NaN from rnd counts as zero", policy(BackoffConstant, 10), 1, fixed(math.NaN()), 900 * time.Millisecond},
		{"zero jitter ignores rnd", policy(BackoffExponential, 0), 3, fixed(0.9), 4 * time.Second},
		{"zero policy uses the defaults", RetryPolicy{}, 2, nil, 2 * time.Second},
		{
			"huge cap does not overflow",
			RetryPolicy{BackoffBaseMs: 1, MaxBackoffMs: math.MaxInt},
			math.MaxInt, nil,
			time.Duration(math.MaxInt64 / int64(time.Millisecond) * int64(time.Millisecond)),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.policy.Delay(tc.attempt, tc.rnd)
			require.Equal(t, tc.want, got)
			require.GreaterOrEqual(t, got, time.Duration(0))
		})
	}
}
