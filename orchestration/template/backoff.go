package template

import (
	"math"
	"time"
)

const (
	// maxDelayMs is the largest delay, in milliseconds, that a time.Duration can hold.
	maxDelayMs = float64(math.MaxInt64 / int64(time.Millisecond))
	// maxUncappedMs bounds the delay before jitter so that jitter arithmetic stays
	// finite; it is far above any cap, so the result is unaffected.
	maxUncappedMs = math.MaxFloat64 / 4
	// maxDoublings is enough doublings to overflow any float64 base delay to +Inf.
	maxDoublings = 2100
)

// Delay returns how long to wait before retrying after attempt (1-based) failed.
//
// The base delay is BackoffBaseMs for constant backoff, BackoffBaseMs*attempt for
// linear and BackoffBaseMs*2^(attempt-1) for exponential. When rnd is not nil, the
// delay d is then moved to a uniformly drawn point of [d*(1-p/100), d*(1+p/100)],
// where p is JitterPercent and rnd returns values in [0, 1). Finally the delay is
// capped at MaxBackoffMs. The result is never negative and does not overflow, however
// large attempt is. An attempt below 1 counts as 1.
//
// Delay applies the policy defaults itself, so a zero RetryPolicy behaves like the
// default policy; it does not validate the policy.
func (p RetryPolicy) Delay(attempt int, rnd func() float64) time.Duration {
	p = p.withDefaults()
	attempt = max(attempt, 1)
	limit := min(float64(max(p.MaxBackoffMs, 0)), maxDelayMs)
	ms := min(p.baseDelayMs(attempt), maxUncappedMs)
	if rnd != nil {
		ms = jitter(ms, *p.JitterPercent, rnd())
	}
	return toDuration(max(min(ms, limit), 0))
}

// toDuration converts a delay in milliseconds, at most maxDelayMs, to a Duration
// rounded to the nanosecond. Whole milliseconds are converted exactly.
func toDuration(ms float64) time.Duration {
	whole := math.Floor(ms)
	fraction := math.Round((ms - whole) * float64(time.Millisecond))
	return time.Duration(whole)*time.Millisecond + time.Duration(fraction)
}

// baseDelayMs is the delay before jitter and cap. It may be +Inf for exponential
// backoff with a very large attempt.
func (p RetryPolicy) baseDelayMs(attempt int) float64 {
	base := float64(p.BackoffBaseMs)
	switch p.Backoff {
	case BackoffLinear:
		return base * float64(attempt)
	case BackoffConstant:
		return base
	default:
		return math.Ldexp(base, min(attempt-1, maxDoublings))
	}
}

// jitter moves ms by up to percent of itself in either direction: u = 0 gives the
// lowest value, u = 0.5 leaves ms unchanged, u close to 1 gives nearly the highest.
func jitter(ms float64, percent int, u float64) float64 {
	if !(u >= 0) { // also catches NaN
		u = 0
	}
	u = min(u, 1)
	spread := ms * (float64(percent) / 100)
	return ms - spread + 2*spread*u
}
