package controllers

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

func TestWorkerPoolReadyCondition(t *testing.T) {
	t.Parallel()

	secretMissing := &poolBlocker{poolReasonSecretNotFound, "Secret ns/db (spec.database.secretRef.name) not found"}
	rolledOut := func(desired, updated, ready int32) poolReadiness {
		return poolReadiness{deployment: true, rolledOut: true, desired: desired, updated: updated, ready: ready}
	}
	tests := []struct {
		name    string
		in      poolReadiness
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{
			"BlockerWins",
			poolReadiness{blocker: secretMissing, dbErr: errors.New("down"), deployment: true, rolledOut: true},
			metav1.ConditionFalse, poolReasonSecretNotFound, secretMissing.message,
		},
		{
			"DatabaseUnavailable",
			poolReadiness{dbErr: errors.New("connection refused"), deployment: true, rolledOut: true},
			metav1.ConditionFalse, poolReasonDatabaseUnavailable,
			"cannot read queue depth and in-flight steps, so the replica count is held: connection refused",
		},
		{"NoDeploymentYet", poolReadiness{desired: 1}, metav1.ConditionFalse, poolReasonProgressing, "the Deployment does not exist yet"},
		{
			"SpecNotObservedYet",
			poolReadiness{deployment: true, desired: 0},
			metav1.ConditionFalse, poolReasonProgressing, "the Deployment controller has not yet observed the latest Deployment spec",
		},
		{"RollingOut", rolledOut(3, 1, 3), metav1.ConditionFalse, poolReasonProgressing, "rolling out: 1 of 3 replicas run the latest pod template"},
		{"NotAllReady", rolledOut(3, 3, 2), metav1.ConditionFalse, poolReasonProgressing, "2 of 3 replicas ready"},
		{"AllReady", rolledOut(3, 3, 3), metav1.ConditionTrue, poolReasonReplicasReady, "3 of 3 replicas ready"},
		{"ScaledToZero", rolledOut(0, 0, 0), metav1.ConditionTrue, poolReasonReplicasReady, "0 of 0 replicas ready"},
		{"SurplusDuringScaleDown", rolledOut(1, 3, 3), metav1.ConditionTrue, poolReasonReplicasReady, "3 of 1 replicas ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := poolReadyCondition(tt.in)
			require.Equal(t, metav1.Condition{
				Type: poolConditionReady, Status: tt.status, Reason: tt.reason, Message: tt.message,
			}, got)
		})
	}
}

func TestWorkerPoolStatus(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 5, 1, 12, 0, 0, 250_000_000, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour).Truncate(time.Second))
	newPool := func() *workflowsv1alpha1.WorkerPool {
		pool := &workflowsv1alpha1.WorkerPool{
			ObjectMeta: metav1.ObjectMeta{Name: "workers", Namespace: "ns", Generation: 4},
		}
		pool.Status = workflowsv1alpha1.WorkerPoolStatus{
			DesiredReplicas: 2, QueueDepth: 7, InFlightSteps: 1, LastScaleTime: &earlier, ObservedGeneration: 3,
		}
		return pool
	}

	t.Run("KeepsWhatWasNotObserved", func(t *testing.T) {
		t.Parallel()
		s := &poolState{pool: newPool(), now: now, blocker: &poolBlocker{poolReasonSecretNotFound, "missing"}}
		st := s.status()
		require.Equal(t, int32(2), st.DesiredReplicas)
		require.Equal(t, int64(7), st.QueueDepth)
		require.Equal(t, int64(1), st.InFlightSteps)
		require.Equal(t, &earlier, st.LastScaleTime)
		require.Equal(t, int64(4), st.ObservedGeneration)
		require.Equal(t, "app.kubernetes.io/instance=workers,app.kubernetes.io/name=tasker-worker", st.Selector)
		ready := meta.FindStatusCondition(st.Conditions, poolConditionReady)
		require.NotNil(t, ready)
		require.Equal(t, poolReasonSecretNotFound, ready.Reason)
		require.Equal(t, int64(4), ready.ObservedGeneration)
	})

	t.Run("RecordsTheObservationAndRoundsTheScaleTimeUp", func(t *testing.T) {
		t.Parallel()
		deployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
		deployment.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 4, ReadyReplicas: 3}
		s := &poolState{
			pool: newPool(), now: now, deployment: deployment,
			work: &poolWork{queued: 5, inFlight: 2}, desired: new(int32(4)), scaled: true,
		}
		st := s.status()
		require.Equal(t, int32(4), st.Replicas)
		require.Equal(t, int32(3), st.ReadyReplicas)
		require.Equal(t, int32(4), st.DesiredReplicas)
		require.Equal(t, int64(5), st.QueueDepth)
		require.Equal(t, int64(2), st.InFlightSteps)
		require.Equal(t, now.Truncate(time.Second).Add(time.Second), st.LastScaleTime.Time)
		require.Equal(t, "3 of 4 replicas ready", meta.FindStatusCondition(st.Conditions, poolConditionReady).Message)
	})

	t.Run("UnchangedStateGivesAnEqualStatus", func(t *testing.T) {
		t.Parallel()
		pool := newPool()
		pool.Status = (&poolState{pool: pool, now: now}).status()
		again := (&poolState{pool: pool, now: now.Add(time.Minute)}).status()
		require.Equal(t, pool.Status, again, "a second reconcile that saw the same must not write")
	})
}

func TestWorkerPoolCeilSecond(t *testing.T) {
	t.Parallel()
	whole := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	require.Equal(t, whole, ceilSecond(whole))
	require.Equal(t, whole.Add(time.Second), ceilSecond(whole.Add(time.Nanosecond)))
	require.Equal(t, whole.Add(time.Second), ceilSecond(whole.Add(999*time.Millisecond)))
}
