package orderfulfillment

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/worker"
)

// newID derives an identifier for one purpose ("reservation", "payment",
// ...) from the step's UUID: every attempt of a step gets the same ids (so
// a retried payment reuses its payment_id as an idempotency key), and ids
// never repeat across steps or tasks. A step without a UUID (outside the
// worker) gets random ids.
func newID(step *worker.TaskSequenceStep, prefix, purpose string) string {
	return prefix + strings.ToUpper(digest(step, purpose)[:20])
}

// trackingNumber derives the tracking number of a shipment: the carrier's
// prefix and 16 characters.
func trackingNumber(step *worker.TaskSequenceStep, c carrier) string {
	return c.trackingPrefix + strings.ToUpper(digest(step, "tracking")[:16])
}

// digest returns the hex SHA-256 of the step's UUID and purpose.
func digest(step *worker.TaskSequenceStep, purpose string) string {
	seed := step.Step.UUID
	if seed == uuid.Nil {
		seed = uuid.New()
	}
	sum := sha256.Sum256(append(seed[:], purpose...))
	return hex.EncodeToString(sum[:])
}

// addBusinessDays returns the date n business days after t, skipping
// Saturdays and Sundays, in t's location.
func addBusinessDays(t time.Time, n int) time.Time {
	d := t
	for added := 0; added < n; {
		d = d.AddDate(0, 0, 1)
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			added++
		}
	}
	return d
}
