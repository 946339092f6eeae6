package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

// WorkerPoolOptions configures the WorkerPool controller. The zero value of
// every optional field means "use the default", applied in one place by
// withDefaults.
type WorkerPoolOptions struct {
	// Database is read for queue depth and in-flight steps. Required.
	Database *pgxpool.Pool
	// DefaultImage runs the workers when a pool names no image: the
	// operator's own image. Required.
	DefaultImage string
	// PollInterval is how often queue depth is read for autoscaling.
	// Default 15s.
	PollInterval time.Duration
	// QueryTimeout bounds the database reads of one reconcile. Default 5s.
	QueryTimeout time.Duration
}

func (o WorkerPoolOptions) withDefaults() WorkerPoolOptions {
	if o.PollInterval <= 0 {
		o.PollInterval = 15 * time.Second
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 5 * time.Second
	}
	return o
}

func (o WorkerPoolOptions) validate() error {
	if o.Database == nil {
		return errors.New("WorkerPoolOptions.Database is required")
	}
	if o.DefaultImage == "" {
		return errors.New("WorkerPoolOptions.DefaultImage is required: the image of pools that name none")
	}
	return nil
}

const (
	// poolFinalizer keeps a deleted WorkerPool until the controller has
	// seen the deletion (see Reconcile).
	poolFinalizer = "workflows.tasker.dev/stop-applying"
	// poolControllerName names the controller in logs and metrics.
	poolControllerName = "workerpool"
	// poolEventReporter is the reporting controller of the pools' Events.
	poolEventReporter = "tasker-operator/workerpool"
)

// workerPoolReconciler turns a WorkerPool into a Deployment of `tasker
// worker` and sizes it.
type workerPoolReconciler struct {
	// client reads WorkerPools from the manager's cache and writes.
	client client.Client
	// reader reads Secrets and Deployments from the API server: the watches
	// on them cache metadata only, and the replica count a scale decision
	// starts from must not be stale.
	reader   client.Reader
	recorder recorder.EventRecorder
	meter    *poolWorkMeter
	opts     WorkerPoolOptions
}

// SetupWorkerPoolController registers the WorkerPool controller with mgr.
func SetupWorkerPoolController(mgr ctrl.Manager, opts WorkerPoolOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	opts = opts.withDefaults()
	if err := indexPoolsBySecret(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	r := &workerPoolReconciler{
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		recorder: mgr.GetEventRecorder(poolEventReporter),
		meter:    newPoolWorkMeter(opts.Database, opts.QueryTimeout),
		opts:     opts,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(poolControllerName).
		For(&workflowsv1alpha1.WorkerPool{}, builder.WithPredicates(poolSpecChanged)).
		// A pool's Deployment has the pool's name. Mapping Deployments by
		// name, rather than by controller reference (Owns), also wakes a
		// pool blocked by a Deployment it does not control when that one is
		// deleted.
		WatchesMetadata(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(poolOfDeployment)).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.poolsForSecret)).
		Complete(r)
}

// poolOfDeployment maps a Deployment to the WorkerPool of the same name and
// namespace, which may not exist (Reconcile then does nothing).
func poolOfDeployment(_ context.Context, obj client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(obj)}}
}

// Permissions: pools are patched only to add and remove poolFinalizer (the
// Deployment goes with its owner reference); workerpools/finalizers is
// needed to set blockOwnerDeletion on that reference
// (OwnerReferencesPermissionEnforcement).
// Deployments are server-side applied (patch, and create on first apply) and
// never deleted by the controller. Secrets are only read; Events use the
// events.k8s.io API.
//
// +kubebuilder:rbac:groups=workflows.tasker.dev,resources=workerpools,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=workflows.tasker.dev,resources=workerpools/status,verbs=patch
// +kubebuilder:rbac:groups=workflows.tasker.dev,resources=workerpools/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs the steps that bring the pool's Deployment to its spec,
// then writes the status they observed, once and only when it changed. A
// pool blocked by a problem only a person can fix (a missing Secret, a bad
// spec) waits for a watch event; any other pool is polled for its work.
func (r *workerPoolReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pool := &workflowsv1alpha1.WorkerPool{}
	if err := r.client.Get(ctx, req.NamespacedName, pool); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !pool.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.releasePool(ctx, pool)
	}
	if err := r.holdPool(ctx, pool); err != nil {
		return ctrl.Result{}, err
	}
	s := &poolState{pool: pool, now: time.Now()}
	if err := r.runSteps(ctx, s); err != nil {
		return ctrl.Result{}, err // what was observed is incomplete: keep the last status
	}
	if err := r.writeStatus(ctx, pool, s.status()); err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case s.dbErr != nil:
		return ctrl.Result{}, fmt.Errorf("measuring the work of WorkerPool %s: %w", req, s.dbErr)
	case s.blocker != nil:
		return ctrl.Result{}, nil
	default:
		return ctrl.Result{RequeueAfter: r.opts.PollInterval}, nil
	}
}

// poolStep is one concern of a reconcile. It records what it found in
// the state; an error means the reconcile cannot go on and is retried with
// backoff.
type poolStep func(ctx context.Context, s *poolState) error

// runSteps runs the steps in order until one fails or one finds a blocker.
func (r *workerPoolReconciler) runSteps(ctx context.Context, s *poolState) error {
	steps := []poolStep{
		r.readDeployment,
		checkPoolSpec,
		r.checkSecret,
		r.measureWork,
		r.applyDeployment,
	}
	for _, step := range steps {
		if err := step(ctx, s); err != nil {
			return err
		}
		if s.blocker != nil {
			return nil
		}
	}
	return nil
}

// The WorkerPool controller's watches and predicates:
//
//   - the pool itself, filtered by poolSpecChanged;
//   - its Deployment (Owns, metadata only): every change, status included,
//     reconciles the owner, so readyReplicas reaches the pool's status; the
//     reconciler reads the Deployment itself from the API server, so a cache
//     of whole Deployments would be dead weight;
//   - Secrets (metadata only), mapped by poolsForSecret to the pools that
//     reference them, so that creating or fixing the Secret of a blocked
//     pool reconciles it at once. Metadata only, because a cache of whole
//     Secrets would hold every Secret of the cluster in the operator's
//     memory; the one Secret a reconcile needs is read directly.

// poolSpecChanged passes pool creations, deletions, the start of a
// deletion and spec changes (generation bumps, including `kubectl scale`
// through the scale subresource), and drops the controller's own status
// and finalizer writes, which would otherwise wake it again after every
// reconcile. Polling (RequeueAfter) covers the work that changes outside
// Kubernetes.
var poolSpecChanged = specOrDeletionChanged

// poolDatabaseRefIndex is the field index of WorkerPools by the name of the
// Secret that spec.database.secretRef names.
const poolDatabaseRefIndex = ".spec.database.secretRef.name"

// indexPoolsBySecret registers poolDatabaseRefIndex with the manager's cache.
func indexPoolsBySecret(ctx context.Context, indexer client.FieldIndexer) error {
	err := indexer.IndexField(ctx, &workflowsv1alpha1.WorkerPool{}, poolDatabaseRefIndex, func(obj client.Object) []string {
		pool, ok := obj.(*workflowsv1alpha1.WorkerPool)
		if !ok {
			return nil
		}
		return []string{pool.Spec.Database.SecretRef.Name}
	})
	if err != nil {
		return fmt.Errorf("indexing WorkerPools by Secret: %w", err)
	}
	return nil
}

// poolsForSecret maps a Secret to the pools of its namespace that reference
// it.
func (r *workerPoolReconciler) poolsForSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var pools workflowsv1alpha1.WorkerPoolList
	err := r.client.List(ctx, &pools,
		client.InNamespace(secret.GetNamespace()),
		client.MatchingFields{poolDatabaseRefIndex: secret.GetName()})
	if err != nil {
		// A cache read fails only while the cache is stopping or not yet
		// synced; the cache's periodic resync reconciles every pool later.
		log.FromContext(ctx).Error(err, "listing the WorkerPools of a Secret", "secret", client.ObjectKeyFromObject(secret))
		return nil
	}
	requests := make([]reconcile.Request, 0, len(pools.Items))
	for i := range pools.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pools.Items[i])})
	}
	return requests
}

// The finalizer closes a race with the garbage collector. A plain
// (background) delete removes a pool at once, and the garbage collector
// then deletes its Deployment; a reconcile that had read the Deployment
// before that and applied it after would create it again (an apply creates
// what is missing), to be collected again later. With the finalizer, the
// pool stays, marked for deletion, until a reconcile sees the mark; the
// reconciles of one pool never overlap, so every apply happens while the
// pool and its Deployment still exist, and the reconcile that releases the
// pool applies nothing.

// holdPool adds poolFinalizer to a live pool that lacks it.
func (r *workerPoolReconciler) holdPool(ctx context.Context, pool *workflowsv1alpha1.WorkerPool) error {
	if controllerutil.ContainsFinalizer(pool, poolFinalizer) {
		return nil
	}
	before := pool.DeepCopy()
	controllerutil.AddFinalizer(pool, poolFinalizer)
	if err := r.client.Patch(ctx, pool, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding finalizer to WorkerPool %s/%s: %w", pool.Namespace, pool.Name, err)
	}
	return nil
}

// releasePool removes poolFinalizer from a pool marked for deletion, and
// does nothing else: the garbage collector deletes the Deployment once the
// pool is gone.
func (r *workerPoolReconciler) releasePool(ctx context.Context, pool *workflowsv1alpha1.WorkerPool) error {
	if !controllerutil.ContainsFinalizer(pool, poolFinalizer) {
		return nil
	}
	before := pool.DeepCopy()
	controllerutil.RemoveFinalizer(pool, poolFinalizer)
	err := r.client.Patch(ctx, pool, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	if err != nil {
		return client.IgnoreNotFound(fmt.Errorf("removing finalizer from WorkerPool %s/%s: %w", pool.Namespace, pool.Name, err))
	}
	return nil
}
