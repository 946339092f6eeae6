package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

// The WorkerPool condition and its reasons.
const (
	// poolConditionReady says whether the pool runs as many ready, current
	// workers as it wants, or what stops it.
	poolConditionReady = "Ready"

	poolReasonReplicasReady       = "ReplicasReady"
	poolReasonProgressing         = "Progressing"
	poolReasonSecretNotFound      = "SecretNotFound"
	poolReasonSecretKeyNotFound   = "SecretKeyNotFound"
	poolReasonSecretKeyEmpty      = "SecretKeyEmpty"
	poolReasonInvalidSpec         = "InvalidSpec"
	poolReasonDeploymentConflict  = "DeploymentConflict"
	poolReasonDeploymentRejected  = "DeploymentRejected"
	poolReasonDatabaseUnavailable = "DatabaseUnavailable"
)

// poolBlocker is a problem that stops the controller from applying a pool's
// Deployment and that retrying cannot fix: it waits for a change of the
// pool, its Secret or its Deployment.
type poolBlocker struct {
	reason  string
	message string
}

// poolState is what one reconcile learned about a pool, step by step; the
// status is computed from it.
type poolState struct {
	pool *workflowsv1alpha1.WorkerPool
	now  time.Time
	// deployment is the pool's Deployment as read, then as applied; nil
	// while there is none.
	deployment *appsv1.Deployment
	blocker    *poolBlocker
	// work is the measured work; nil when it was not measured.
	work *poolWork
	// dbErr is why the work could not be measured.
	dbErr error
	// desired is the replica count applied; nil when none was.
	desired *int32
	// scaled is true when the Deployment's replica count changed.
	scaled bool
}

// status computes the pool's new status from the state. What this
// reconcile did not observe keeps its last value.
func (s *poolState) status() workflowsv1alpha1.WorkerPoolStatus {
	st := *s.pool.Status.DeepCopy()
	st.ObservedGeneration = s.pool.Generation
	st.Selector = poolSelectorString(s.pool)
	st.Replicas, st.ReadyReplicas = 0, 0
	if s.deployment != nil {
		st.Replicas, st.ReadyReplicas = s.deployment.Status.Replicas, s.deployment.Status.ReadyReplicas
	}
	if s.desired != nil {
		st.DesiredReplicas = *s.desired
	}
	if s.work != nil {
		st.QueueDepth, st.InFlightSteps = s.work.queued, s.work.inFlight
	}
	if s.scaled {
		// The API stores whole seconds; rounding up keeps the scale-down
		// delay, measured from this time, from being cut short.
		st.LastScaleTime = new(metav1.NewTime(ceilSecond(s.now)))
	}
	ready := poolReadyCondition(s.readiness(st.DesiredReplicas))
	ready.ObservedGeneration = s.pool.Generation
	meta.SetStatusCondition(&st.Conditions, ready)
	return st
}

// readiness gathers what the Ready condition is decided from.
func (s *poolState) readiness(desired int32) poolReadiness {
	in := poolReadiness{blocker: s.blocker, dbErr: s.dbErr, desired: desired}
	if d := s.deployment; d != nil {
		in.deployment = true
		in.rolledOut = d.Status.ObservedGeneration >= d.Generation
		in.updated, in.ready = d.Status.UpdatedReplicas, d.Status.ReadyReplicas
	}
	return in
}

// poolReadiness is what the Ready condition is decided from.
type poolReadiness struct {
	blocker *poolBlocker
	dbErr   error
	// deployment is true when the Deployment exists.
	deployment bool
	// rolledOut is true when the Deployment controller has observed the
	// Deployment's latest spec.
	rolledOut bool
	// desired, updated and ready count replicas: wanted, running the
	// latest pod template, and ready.
	desired, updated, ready int32
}

// poolReadyCondition decides the Ready condition: False with the blocker,
// a database failure, or a rollout in progress; True when as many updated
// replicas are ready as the pool wants.
func poolReadyCondition(in poolReadiness) metav1.Condition {
	notReady := func(reason, message string) metav1.Condition {
		return metav1.Condition{Type: poolConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: message}
	}
	switch {
	case in.blocker != nil:
		return notReady(in.blocker.reason, in.blocker.message)
	case in.dbErr != nil:
		return notReady(poolReasonDatabaseUnavailable,
			"cannot read queue depth and in-flight steps, so the replica count is held: "+in.dbErr.Error())
	case !in.deployment:
		return notReady(poolReasonProgressing, "the Deployment does not exist yet")
	case !in.rolledOut:
		return notReady(poolReasonProgressing, "the Deployment controller has not yet observed the latest Deployment spec")
	case in.updated < in.desired:
		return notReady(poolReasonProgressing, fmt.Sprintf("rolling out: %d of %d replicas run the latest pod template", in.updated, in.desired))
	case in.ready < in.desired:
		return notReady(poolReasonProgressing, fmt.Sprintf("%d of %d replicas ready", in.ready, in.desired))
	}
	return metav1.Condition{
		Type: poolConditionReady, Status: metav1.ConditionTrue, Reason: poolReasonReplicasReady,
		Message: fmt.Sprintf("%d of %d replicas ready", in.ready, in.desired),
	}
}

// writeStatus patches the pool's status to status, only when it changed.
func (r *workerPoolReconciler) writeStatus(ctx context.Context, pool *workflowsv1alpha1.WorkerPool, status workflowsv1alpha1.WorkerPoolStatus) error {
	if equality.Semantic.DeepEqual(pool.Status, status) {
		return nil
	}
	updated := pool.DeepCopy()
	updated.Status = status
	if err := r.client.Status().Patch(ctx, updated, client.MergeFrom(pool)); err != nil {
		return fmt.Errorf("writing the status of WorkerPool %s/%s: %w", pool.Namespace, pool.Name, err)
	}
	return nil
}

// ceilSecond rounds t up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if down := t.Truncate(time.Second); !down.Equal(t) {
		return down.Add(time.Second)
	}
	return t
}
