package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

// Defaults of spec fields, the same as the CRD's; they matter only for
// objects stored before the CRD defaulted them.
const (
	poolDefaultReplicas              = 1
	poolDefaultTargetStepsPerReplica = 20
	poolDefaultScaleDownDelaySeconds = 60
)

// Reasons of the Events recorded when a pool's replica count changes.
const (
	poolEventScaledUp   = "ScaledUp"
	poolEventScaledDown = "ScaledDown"
)

// poolScaleDecision says why desiredReplicas chose its count.
type poolScaleDecision string

const (
	// poolScaleSteady: the work needs the current count.
	poolScaleSteady poolScaleDecision = "Steady"
	// poolScaleUp: the work, or minReplicas, needs more replicas: scale up
	// at once, from zero too.
	poolScaleUp poolScaleDecision = "Up"
	// poolScaleDown: the work needs fewer replicas and the last scale was at
	// least scaleDownDelaySeconds ago.
	poolScaleDown poolScaleDecision = "Down"
	// poolScaleDownDelayed: the work needs fewer replicas, but the last scale
	// was less than scaleDownDelaySeconds ago: keep the count.
	poolScaleDownDelayed poolScaleDecision = "DownDelayed"
	// poolScaleToMaximum: the count is above maxReplicas (it was lowered):
	// come down to it at once, the rest after the delay.
	poolScaleToMaximum poolScaleDecision = "ToMaximum"
)

// desiredReplicas decides the replica count of an autoscaled pool that runs
// current replicas and has work steps to do (queued plus in flight):
// ceil(work / targetStepsPerReplica) within [minReplicas, maxReplicas].
// Scaling up happens at once; scaling down only when the last scale
// (lastScale, zero for never) was at least scaleDownDelaySeconds before
// now.
func desiredReplicas(spec workflowsv1alpha1.WorkerPoolAutoscaling, current int32, work int64, lastScale, now time.Time) (int32, poolScaleDecision) {
	want := clampReplicas(replicasForWork(work, int64(poolTarget(spec))), spec)
	delay := time.Duration(poolScaleDownDelaySeconds(spec)) * time.Second
	switch {
	case want > current:
		return want, poolScaleUp
	case want == current:
		return current, poolScaleSteady
	case lastScale.IsZero() || !now.Before(lastScale.Add(delay)):
		return want, poolScaleDown
	case current > spec.MaxReplicas:
		return spec.MaxReplicas, poolScaleToMaximum
	default:
		return current, poolScaleDownDelayed
	}
}

// poolReplicas decides the replica count to apply to the pool's Deployment,
// which runs current replicas, and says why in words for the scale Event.
func poolReplicas(s *poolState, current int32) (int32, string) {
	spec := s.pool.Spec.Autoscaling
	if spec == nil {
		replicas := int32(poolDefaultReplicas)
		if s.pool.Spec.Replicas != nil {
			replicas = *s.pool.Spec.Replicas
		}
		return replicas, fmt.Sprintf("spec.replicas is %d", replicas)
	}
	bounds := fmt.Sprintf("within [%d, %d]", spec.MinReplicas, spec.MaxReplicas)
	if s.work == nil {
		return clampReplicas(int64(current), *spec), "the work is unknown (database unavailable): the count is only kept " + bounds
	}
	var lastScale time.Time
	if s.pool.Status.LastScaleTime != nil {
		lastScale = s.pool.Status.LastScaleTime.Time
	}
	replicas, decision := desiredReplicas(*spec, current, s.work.total(), lastScale, s.now)
	if decision == poolScaleToMaximum {
		return replicas, fmt.Sprintf("maxReplicas is %d; %s", spec.MaxReplicas, s.work)
	}
	return replicas, fmt.Sprintf("%s at %d per replica, %s", s.work, poolTarget(*spec), bounds)
}

// recordScale records that the pool's replica count changed (from → to):
// an Event, a log line, and the scale in the state.
func (r *workerPoolReconciler) recordScale(ctx context.Context, s *poolState, from, to int32, cause string) {
	reason := poolEventScaledUp
	if to < from {
		reason = poolEventScaledDown
	}
	r.recorder.Eventf(s.pool, nil, corev1.EventTypeNormal, reason, "Scale",
		"Scaled from %d to %d replicas: %s", from, to, cause)
	log.FromContext(ctx).Info("scaled the worker Deployment", "from", from, "to", to, "cause", cause)
	s.scaled = true
}

// poolTarget returns the pool's targetStepsPerReplica.
func poolTarget(spec workflowsv1alpha1.WorkerPoolAutoscaling) int32 {
	if spec.TargetStepsPerReplica < 1 {
		return poolDefaultTargetStepsPerReplica
	}
	return spec.TargetStepsPerReplica
}

// poolScaleDownDelaySeconds returns the pool's scaleDownDelaySeconds.
func poolScaleDownDelaySeconds(spec workflowsv1alpha1.WorkerPoolAutoscaling) int32 {
	if spec.ScaleDownDelaySeconds == nil {
		return poolDefaultScaleDownDelaySeconds
	}
	return max(*spec.ScaleDownDelaySeconds, 0)
}

// clampReplicas bounds n to [minReplicas, maxReplicas].
func clampReplicas(n int64, spec workflowsv1alpha1.WorkerPoolAutoscaling) int32 {
	return int32(min(max(n, int64(spec.MinReplicas)), int64(spec.MaxReplicas)))
}

// replicasForWork returns ceil(work / target), the replicas that work
// needs at target steps per replica (target > 0; negative work counts as 0).
func replicasForWork(work, target int64) int64 {
	if work <= 0 {
		return 0
	}
	return (work-1)/target + 1
}

// poolWork is the work of a pool's namespaces at one moment.
type poolWork struct {
	// queued counts the step messages a worker could read now (visible
	// messages of the namespaces' queues).
	queued int64
	// inFlight counts the steps being run (state in_progress).
	inFlight int64
}

// total is the work the autoscaler sizes the pool for.
func (w poolWork) total() int64 { return w.queued + w.inFlight }

// String describes the work for Events and logs.
func (w poolWork) String() string {
	return fmt.Sprintf("%d steps of work (%d queued, %d in flight)", w.total(), w.queued, w.inFlight)
}

// poolWorkMeter reads the work of workflow namespaces from the database.
type poolWorkMeter struct {
	db      *pgxpool.Pool
	queue   *queue.Client
	queries *dbsqlc.Queries
	// timeout bounds one measurement.
	timeout time.Duration
}

// newPoolWorkMeter returns a meter reading db, each measurement bounded by
// timeout.
func newPoolWorkMeter(db *pgxpool.Pool, timeout time.Duration) *poolWorkMeter {
	return &poolWorkMeter{db: db, queue: queue.New(), queries: dbsqlc.New(), timeout: timeout}
}

// measure returns the work of namespaces: the visible messages of their
// step queues plus their in-flight steps. A namespace whose queue does not
// exist yet (no template registered in it) has no queued work.
func (m *poolWorkMeter) measure(ctx context.Context, namespaces []string) (poolWork, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	var work poolWork
	for _, namespace := range namespaces {
		metrics, err := m.queue.Metrics(ctx, m.db, dispatch.StepQueue(namespace))
		if errors.Is(err, queue.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return poolWork{}, fmt.Errorf("reading the depth of namespace %s: %w", namespace, err)
		}
		work.queued += metrics.Visible
	}
	inFlight, err := m.queries.CountInFlightSteps(ctx, m.db, namespaces)
	if err != nil {
		return poolWork{}, fmt.Errorf("counting in-flight steps: %w", err)
	}
	work.inFlight = inFlight
	return work, nil
}

// measureWork is the step that measures the pool's work. A database
// failure does not stop the reconcile: the Deployment is still applied,
// with its replica count held, the failure shows in the Ready condition and
// the reconcile is retried with backoff.
func (r *workerPoolReconciler) measureWork(ctx context.Context, s *poolState) error {
	work, err := r.meter.measure(ctx, s.pool.Spec.Namespaces)
	s.dbErr = err
	if err == nil {
		s.work = &work
	}
	return nil
}
