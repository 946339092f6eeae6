// Package controllers holds the operator's reconcilers: TaskTemplate
// (validates templates and syncs them into the orchestration database) and
// WorkerPool (runs workers as a Deployment and scales it on queue depth).
package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/orchestration"
)

// TaskTemplateOptions configures the TaskTemplate controller.
type TaskTemplateOptions struct {
	// Templates is the engine's registration path. Required.
	Templates *orchestration.TemplateStore
	// ResyncInterval re-registers every template this often, so that a
	// database that was reset is filled again. Default 10 minutes.
	ResyncInterval time.Duration
}

// Defaults of TaskTemplateOptions, applied by withDefaults.
const (
	defaultTemplateResync = 10 * time.Minute
	// templateFinalizer keeps a deleted TaskTemplate until its template is
	// retired in the database.
	templateFinalizer = "workflows.tasker.dev/retire-template"
	// templateControllerName names the controller in logs and metrics.
	templateControllerName = "tasktemplate"
	// templateEventSource is the reporting controller of the Events it emits.
	templateEventSource = "tasktemplate-controller"
)

// withDefaults returns o with every unset field given its default. It is
// the only place where defaults are applied.
func (o TaskTemplateOptions) withDefaults() TaskTemplateOptions {
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = defaultTemplateResync
	}
	return o
}

// taskTemplateReconciler registers TaskTemplates in the database and
// retires them when they are deleted.
type taskTemplateReconciler struct {
	client    client.Client
	templates *orchestration.TemplateStore
	recorder  events.EventRecorder
	resync    time.Duration
}

// specOrDeletionChanged lets through the events that need a sync: creation,
// deletion, a new metadata.generation (the API server bumps it for spec
// changes only, so the controller's own status and finalizer writes do not
// wake it up again), and the start of a graceful deletion, which sets the
// deletion timestamp without necessarily changing the generation.
var specOrDeletionChanged = predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, deletionStarted)

// deletionStarted passes updates that set the deletion timestamp.
var deletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp() == nil && e.ObjectNew.GetDeletionTimestamp() != nil
	},
}

// SetupTaskTemplateController registers the TaskTemplate controller with mgr.
func SetupTaskTemplateController(mgr ctrl.Manager, opts TaskTemplateOptions) error {
	if opts.Templates == nil {
		return errors.New("tasktemplate controller: Templates is required")
	}
	opts = opts.withDefaults()
	r := &taskTemplateReconciler{
		client:    mgr.GetClient(),
		templates: opts.Templates,
		recorder:  mgr.GetEventRecorder(templateEventSource),
		resync:    opts.ResyncInterval,
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named(templateControllerName).
		For(&workflowsv1alpha1.TaskTemplate{}, builder.WithPredicates(specOrDeletionChanged)).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the tasktemplate controller: %w", err)
	}
	return nil
}

// +kubebuilder:rbac:groups=workflows.tasker.dev,resources=tasktemplates,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=workflows.tasker.dev,resources=tasktemplates/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=workflows.tasker.dev,resources=tasktemplates/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile syncs one TaskTemplate: it registers a live resource's spec and
// reports the outcome in its status, or retires a deleted resource's
// template and releases it.
func (r *taskTemplateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	tt := &workflowsv1alpha1.TaskTemplate{}
	if err := r.client.Get(ctx, req.NamespacedName, tt); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !tt.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, tt)
	}
	if controllerutil.AddFinalizer(tt, templateFinalizer) {
		if err := r.client.Update(ctx, tt); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}
	o := r.sync(ctx, tt)
	if err := r.report(ctx, tt, o); err != nil {
		return ctrl.Result{}, err
	}
	return resultFor(o, r.resync)
}

// finalize retires the template a deleted resource registered, then
// removes the finalizer. While the database cannot be reached, the
// resource stays, reports DatabaseUnavailable and is retried with backoff.
func (r *taskTemplateReconciler) finalize(ctx context.Context, tt *workflowsv1alpha1.TaskTemplate) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(tt, templateFinalizer) {
		return ctrl.Result{}, nil
	}
	retired, err := r.retireAll(ctx, tt)
	if err != nil {
		o := outcome{Generation: tt.Generation, Key: specKey(tt), Deleting: true, Err: err}
		if reportErr := r.report(ctx, tt, o); reportErr != nil {
			return ctrl.Result{}, reportErr
		}
		return ctrl.Result{}, fmt.Errorf("finalizing: %w", err)
	}
	for _, key := range retired {
		r.recorder.Eventf(tt, nil, eventNormal, reasonRetired, actionRetire, "retired %s: new tasks can no longer use it", keyString(key))
	}
	controllerutil.RemoveFinalizer(tt, templateFinalizer)
	if err := r.client.Update(ctx, tt); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("removing finalizer: %w", err))
	}
	return ctrl.Result{}, nil
}

// report writes the status that describes o, once and only when it
// changed, then emits an Event when the outcome is news.
func (r *taskTemplateReconciler) report(ctx context.Context, tt *workflowsv1alpha1.TaskTemplate, o outcome) error {
	next := nextStatus(tt.Status, o, metav1.Now())
	if equality.Semantic.DeepEqual(tt.Status, next) {
		return nil
	}
	previous := tt.Status
	tt.Status = next
	if err := r.client.Status().Update(ctx, tt); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("writing status: %w", err))
	}
	if ev, ok := eventFor(previous, o); ok {
		r.recorder.Eventf(tt, nil, ev.kind, ev.reason, ev.action, "%s", ev.note)
	}
	return nil
}
