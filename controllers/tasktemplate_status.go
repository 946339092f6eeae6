package controllers

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/orchestration"
)

// The Ready condition of a TaskTemplate and its reasons.
const (
	conditionReady            = "Ready"
	reasonSynced              = "Synced"
	reasonInvalidSpec         = "InvalidSpec"
	reasonConflict            = "Conflict"
	reasonDatabaseUnavailable = "DatabaseUnavailable"
	// reasonRetired is the reason of the Event of a retirement.
	reasonRetired = "Retired"
)

// Event actions (events.k8s.io/v1 requires one) and types.
const (
	actionRegister = "Register"
	actionRetire   = "Retire"
	eventNormal    = "Normal"
	eventWarning   = "Warning"
)

// Limits of the API server: a condition message and an Event note.
const (
	maxConditionMessage = 32768
	maxEventNote        = 1024
)

// readyCondition returns the Ready condition that reports o.
func readyCondition(o outcome) metav1.Condition {
	c := metav1.Condition{Type: conditionReady, Status: metav1.ConditionFalse, ObservedGeneration: o.Generation}
	invalid, isInvalid := errors.AsType[*invalidSpecError](o.Err)
	conflict, isConflict := errors.AsType[*orchestration.TemplateConflictError](o.Err)
	switch {
	case o.Err == nil:
		c.Status, c.Reason = metav1.ConditionTrue, reasonSynced
		c.Message = fmt.Sprintf("registered as %s with %d steps", keyString(o.Key), o.StepCount)
	case isInvalid:
		c.Reason, c.Message = reasonInvalidSpec, invalid.Error()
	case isConflict:
		c.Reason = reasonConflict
		c.Message = fmt.Sprintf("%s is already registered by %s with a different definition; "+
			"change spec.namespaceName, spec.name or spec.version, or retire the other owner's template "+
			"(delete that resource), and this one is registered at the next resync", conflict.Key, conflict.Owner)
	default:
		c.Reason, c.Message = reasonDatabaseUnavailable, "the template database failed: "+o.Err.Error()
	}
	c.Message = truncate(c.Message, maxConditionMessage)
	return c
}

// nextStatus returns the status that reports o, starting from cur. What a
// failed sync does not know (the registered key, its step count and when
// it was synced) keeps its last value, because that template is still what
// the database holds. syncedAt moves only when the registration changed
// the database or this generation was not reported Synced yet, so a resync
// that changes nothing writes nothing.
func nextStatus(cur workflowsv1alpha1.TaskTemplateStatus, o outcome, now metav1.Time) workflowsv1alpha1.TaskTemplateStatus {
	next := *cur.DeepCopy()
	wasSynced := isSyncedAt(cur, o.Generation)
	next.ObservedGeneration = o.Generation
	ready := readyCondition(o)
	ready.LastTransitionTime = now
	meta.SetStatusCondition(&next.Conditions, ready)
	if o.Err != nil {
		return next
	}
	key := o.Key
	next.Registered = &key
	next.StepCount = o.StepCount
	if o.Changed || !wasSynced || next.SyncedAt == nil {
		next.SyncedAt = &now
	}
	return next
}

// isSyncedAt reports whether status says generation is registered.
func isSyncedAt(status workflowsv1alpha1.TaskTemplateStatus, generation int64) bool {
	c := meta.FindStatusCondition(status.Conditions, conditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reasonSynced && c.ObservedGeneration == generation
}

// resultFor returns what Reconcile returns after o: a resync when the spec
// is registered or held by another owner (who may let go of it), no retry
// for an invalid spec (only a new generation can fix it, and that triggers
// a reconcile), and the error, for the work queue's backoff, otherwise.
func resultFor(o outcome, resync time.Duration) (ctrl.Result, error) {
	_, isInvalid := errors.AsType[*invalidSpecError](o.Err)
	_, isConflict := errors.AsType[*orchestration.TemplateConflictError](o.Err)
	switch {
	case o.Err == nil, isConflict:
		return ctrl.Result{RequeueAfter: resync}, nil
	case isInvalid:
		return ctrl.Result{}, reconcile.TerminalError(o.Err)
	default:
		return ctrl.Result{}, fmt.Errorf("syncing template %s: %w", keyString(o.Key), o.Err)
	}
}

// templateEvent is an Event to emit about a TaskTemplate.
type templateEvent struct {
	kind, reason, action, note string
}

// eventFor returns the Event that announces o, given the status before it,
// and false when o is no news: the Ready condition is unchanged and the
// database was not changed. A lasting problem is announced once, not at
// every retry.
func eventFor(prev workflowsv1alpha1.TaskTemplateStatus, o outcome) (templateEvent, bool) {
	ready := readyCondition(o)
	old := meta.FindStatusCondition(prev.Conditions, conditionReady)
	unchanged := old != nil && old.Reason == ready.Reason && old.Message == ready.Message &&
		old.ObservedGeneration == ready.ObservedGeneration
	if unchanged && !o.Changed {
		return templateEvent{}, false
	}
	if o.Err != nil {
		action := actionRegister
		if o.Deleting {
			action = actionRetire
		}
		return templateEvent{kind: eventWarning, reason: ready.Reason, action: action, note: truncate(ready.Message, maxEventNote)}, true
	}
	return templateEvent{kind: eventNormal, reason: reasonSynced, action: actionRegister, note: truncate(syncedNote(o), maxEventNote)}, true
}

// syncedNote says what a successful sync did to the database.
func syncedNote(o outcome) string {
	var note string
	switch {
	case o.Created:
		note = fmt.Sprintf("registered %s with %d steps", keyString(o.Key), o.StepCount)
	case o.Changed:
		note = fmt.Sprintf("updated %s: new tasks get the new definition (%d steps), running tasks keep theirs", keyString(o.Key), o.StepCount)
	default:
		note = fmt.Sprintf("%s is registered with %d steps", keyString(o.Key), o.StepCount)
	}
	if o.Retired != nil {
		note += fmt.Sprintf("; retired %s, which the previous spec registered", keyString(*o.Retired))
	}
	return note
}

// truncate shortens s to at most limit bytes, on a rune boundary, marking
// the cut with an ellipsis.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
