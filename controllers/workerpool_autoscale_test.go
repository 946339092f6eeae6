package controllers

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/template"
)

func TestWorkerPoolDesiredReplicas(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	autoscaling := func(minReplicas, maxReplicas, target int32, delaySeconds *int32) workflowsv1alpha1.WorkerPoolAutoscaling {
		return workflowsv1alpha1.WorkerPoolAutoscaling{
			MinReplicas: minReplicas, MaxReplicas: maxReplicas,
			TargetStepsPerReplica: target, ScaleDownDelaySeconds: delaySeconds,
		}
	}
	delay2s := new(int32(2))
	tests := []struct {
		name      string
		spec      workflowsv1alpha1.WorkerPoolAutoscaling
		current   int32
		work      int64
		lastScale time.Time
		want      int32
		decision  poolScaleDecision
	}{
		{"IdleAtZeroStaysAtZero", autoscaling(0, 5, 2, delay2s), 0, 0, time.Time{}, 0, poolScaleSteady},
		{"FirstStepScalesUpFromZero", autoscaling(0, 5, 2, delay2s), 0, 1, now, 1, poolScaleUp},
		{"RoundsUp", autoscaling(0, 5, 2, delay2s), 0, 5, time.Time{}, 3, poolScaleUp},
		{"ExactMultiple", autoscaling(0, 5, 2, delay2s), 0, 4, time.Time{}, 2, poolScaleUp},
		{"CappedAtMax", autoscaling(0, 5, 2, delay2s), 1, 1000, time.Time{}, 5, poolScaleUp},
		{"ScaleUpIgnoresTheDelay", autoscaling(0, 5, 2, delay2s), 1, 10, now.Add(-time.Millisecond), 5, poolScaleUp},
		{"MinRaisedScalesUpAtOnce", autoscaling(3, 5, 2, delay2s), 1, 0, now, 3, poolScaleUp},
		{"WorkMatchesCurrent", autoscaling(0, 5, 2, delay2s), 3, 6, now, 3, poolScaleSteady},
		{"IdleStaysAtMin", autoscaling(2, 5, 2, delay2s), 2, 0, time.Time{}, 2, poolScaleSteady},
		{"DownWaitsForTheDelay", autoscaling(0, 5, 2, delay2s), 3, 0, now.Add(-1999 * time.Millisecond), 3, poolScaleDownDelayed},
		{"DownAtTheDelay", autoscaling(0, 5, 2, delay2s), 3, 0, now.Add(-2 * time.Second), 0, poolScaleDown},
		{"DownToWhatTheWorkNeeds", autoscaling(0, 5, 2, delay2s), 5, 3, now.Add(-time.Minute), 2, poolScaleDown},
		{"DownNeverBelowMin", autoscaling(1, 5, 2, delay2s), 5, 0, now.Add(-time.Minute), 1, poolScaleDown},
		{"NeverScaledMayScaleDown", autoscaling(0, 5, 2, delay2s), 3, 0, time.Time{}, 0, poolScaleDown},
		{"ZeroDelayScalesDownAtOnce", autoscaling(0, 5, 2, new(int32(0))), 3, 0, now, 0, poolScaleDown},
		{"DefaultDelayIsSixtySeconds", autoscaling(0, 5, 2, nil), 3, 0, now.Add(-59 * time.Second), 3, poolScaleDownDelayed},
		{"DefaultDelayPassed", autoscaling(0, 5, 2, nil), 3, 0, now.Add(-60 * time.Second), 0, poolScaleDown},
		{"DefaultTargetIsTwenty", autoscaling(0, 5, 0, delay2s), 0, 21, time.Time{}, 2, poolScaleUp},
		{"MaxLoweredComesDownAtOnce", autoscaling(0, 5, 2, delay2s), 8, 1000, now, 5, poolScaleToMaximum},
		{"MaxLoweredIdleComesDownToMaxFirst", autoscaling(0, 5, 2, delay2s), 8, 0, now, 5, poolScaleToMaximum},
		{"MaxLoweredIdleAfterTheDelay", autoscaling(0, 5, 2, delay2s), 8, 0, now.Add(-time.Minute), 0, poolScaleDown},
		{"NegativeWorkCountsAsNone", autoscaling(0, 5, 2, delay2s), 0, -3, time.Time{}, 0, poolScaleSteady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, decision := desiredReplicas(tt.spec, tt.current, tt.work, tt.lastScale, now)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.decision, decision)
		})
	}
}

func TestWorkerPoolReplicas(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	newState := func(spec workflowsv1alpha1.WorkerPoolSpec, work *poolWork) *poolState {
		return &poolState{pool: &workflowsv1alpha1.WorkerPool{Spec: spec}, work: work, now: now}
	}
	autoscaling := &workflowsv1alpha1.WorkerPoolAutoscaling{MinReplicas: 1, MaxReplicas: 4, TargetStepsPerReplica: 2}

	t.Run("WithoutAutoscalingUsesSpecReplicas", func(t *testing.T) {
		t.Parallel()
		got, cause := poolReplicas(newState(workflowsv1alpha1.WorkerPoolSpec{Replicas: new(int32(3))}, &poolWork{queued: 100}), 1)
		require.Equal(t, int32(3), got)
		require.Equal(t, "spec.replicas is 3", cause)
	})

	t.Run("WithoutReplicasDefaultsToOne", func(t *testing.T) {
		t.Parallel()
		got, _ := poolReplicas(newState(workflowsv1alpha1.WorkerPoolSpec{}, nil), 0)
		require.Equal(t, int32(1), got)
	})

	t.Run("AutoscalingDescribesTheWork", func(t *testing.T) {
		t.Parallel()
		got, cause := poolReplicas(newState(workflowsv1alpha1.WorkerPoolSpec{Autoscaling: autoscaling}, &poolWork{queued: 3, inFlight: 2}), 1)
		require.Equal(t, int32(3), got)
		require.Equal(t, "5 steps of work (3 queued, 2 in flight) at 2 per replica, within [1, 4]", cause)
	})

	t.Run("UnknownWorkHoldsTheCountWithinBounds", func(t *testing.T) {
		t.Parallel()
		s := newState(workflowsv1alpha1.WorkerPoolSpec{Autoscaling: autoscaling}, nil)
		s.dbErr = errors.New("connection refused")
		for current, want := range map[int32]int32{0: 1, 3: 3, 9: 4} {
			got, cause := poolReplicas(s, current)
			require.Equal(t, want, got, "current %d", current)
			require.Contains(t, cause, "database unavailable")
		}
	})
}

// registerWorkTemplate registers a one-step template in namespace, which
// also creates the namespace's queue.
func registerWorkTemplate(ctx context.Context, tb testing.TB, engine *orchestration.Engine, namespace string) {
	tb.Helper()
	_, err := engine.Templates().Register(ctx, template.Definition{
		NamespaceName: namespace, Name: "work", Version: "1.0.0",
		IdentityStrategy: template.IdentityAlwaysUnique,
		Steps:            []template.Step{{Name: "only", Handler: template.Handler{Callable: namespace + ".Only"}}},
	}, "workerpool-test")
	require.NoError(tb, err)
}

// createWork creates n tasks of the template of registerWorkTemplate: each
// enqueues its one step, so n messages become visible on the queue.
func createWork(ctx context.Context, tb testing.TB, engine *orchestration.Engine, namespace string, n int) {
	tb.Helper()
	for i := range n {
		_, err := engine.CreateTask(ctx, orchestration.CreateTaskRequest{
			Namespace: namespace, Name: "work", Context: []byte(fmt.Sprintf(`{"n": %d}`, i)),
		})
		require.NoError(tb, err)
	}
}

// claimWork does what a worker does with n messages of namespace's queue:
// reads them (they become invisible) and claims their steps (in_progress).
func claimWork(ctx context.Context, tb testing.TB, db *pgxpool.Pool, namespace string, n int) (*dispatch.Executor, []*dispatch.Claim) {
	tb.Helper()
	executor, err := dispatch.NewExecutor(db, dispatch.ExecutorConfig{WorkerID: "workerpool-test"})
	require.NoError(tb, err)
	messages, err := queue.New().Read(ctx, db, dispatch.StepQueue(namespace), time.Minute, n)
	require.NoError(tb, err)
	require.Len(tb, messages, n)
	claims := make([]*dispatch.Claim, 0, n)
	for _, msg := range messages {
		claim, err := executor.Claim(ctx, dispatch.StepQueue(namespace), msg)
		require.NoError(tb, err)
		claims = append(claims, claim)
	}
	return executor, claims
}

func TestWorkerPoolWorkMeter(t *testing.T) {
	t.Parallel()

	db := pgtest.NewDatabase(t)
	engine := orchestration.NewEngine(db.Pool, orchestration.Config{ProcessID: "workerpool-work-test"})
	meter := newPoolWorkMeter(db.Pool, 5*time.Second)
	ctx := t.Context()

	t.Run("NamespaceWithoutQueueHasNoWork", func(t *testing.T) {
		work, err := meter.measure(ctx, []string{"never_registered"})
		require.NoError(t, err)
		require.Equal(t, poolWork{}, work)
	})

	t.Run("CountsVisibleMessagesAndInFlightStepsOfItsNamespacesOnly", func(t *testing.T) {
		registerWorkTemplate(ctx, t, engine, "meter_a")
		registerWorkTemplate(ctx, t, engine, "meter_b")
		registerWorkTemplate(ctx, t, engine, "meter_other")
		createWork(ctx, t, engine, "meter_a", 4)
		createWork(ctx, t, engine, "meter_b", 2)
		createWork(ctx, t, engine, "meter_other", 7)
		claimWork(ctx, t, db.Pool, "meter_a", 1)
		claimWork(ctx, t, db.Pool, "meter_other", 3)

		work, err := meter.measure(ctx, []string{"meter_a", "meter_b", "not_yet"})
		require.NoError(t, err)
		require.Equal(t, poolWork{queued: 5, inFlight: 1}, work, "a claimed step counts once: in flight, not queued")
		require.Equal(t, "6 steps of work (5 queued, 1 in flight)", work.String())
	})

	t.Run("DatabaseFailureIsAnError", func(t *testing.T) {
		closed := pgtest.NewDatabase(t)
		closed.Pool.Close()
		_, err := newPoolWorkMeter(closed.Pool, time.Second).measure(ctx, []string{"meter_a"})
		require.Error(t, err)
	})
}
