package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/controllers"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/migrate"
)

// managerOptions are the flags of `tasker manager`.
type managerOptions struct {
	db             databaseOptions
	logs           logOptions
	metricsListen  string
	healthListen   string
	leaderElect    bool
	leaderElectNS  string
	workerImage    string
	resync         time.Duration
	poll           time.Duration
	skipMigrations bool
	// restConfig, when set, is the API server to use instead of the
	// in-cluster configuration or KUBECONFIG (`tasker dev` sets it).
	restConfig *rest.Config
}

func newManagerCommand() *cobra.Command {
	var o managerOptions
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the operator: the TaskTemplate and WorkerPool controllers",
		Long: `Run the Kubernetes operator (controller-runtime manager) with leader election:

- the TaskTemplate controller validates TaskTemplates (cycles, input schema) and syncs
  them into the orchestration database, retiring them on delete;
- the WorkerPool controller runs each WorkerPool as a Deployment of ` + "`tasker worker`" + `
  and, with autoscaling, sets its replicas from the depth of the pool's queues.

It uses the in-cluster configuration, or KUBECONFIG outside a cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), cmd.ErrOrStderr()) },
	}
	fs := cmd.Flags()
	o.db.addFlags(fs)
	o.logs.addFlags(fs)
	fs.StringVar(&o.metricsListen, "metrics-listen", envOr("TASKER_METRICS_LISTEN", ":8080"), "address for Prometheus metrics, 0 to disable (env TASKER_METRICS_LISTEN)")
	fs.StringVar(&o.healthListen, "health-listen", envOr("TASKER_HEALTH_LISTEN", ":8081"), "address for /healthz and /readyz (env TASKER_HEALTH_LISTEN)")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "elect a leader so that only one manager replica reconciles at a time")
	fs.StringVar(&o.leaderElectNS, "leader-election-namespace", envOr("TASKER_LEADER_ELECTION_NAMESPACE", ""), "namespace of the leader-election lease (env TASKER_LEADER_ELECTION_NAMESPACE; default: the pod's namespace)")
	fs.StringVar(&o.workerImage, "worker-image", envOr("TASKER_WORKER_IMAGE", ""), "image for WorkerPools that name none: the operator's own image (env TASKER_WORKER_IMAGE; required)")
	fs.DurationVar(&o.resync, "template-resync", 10*time.Minute, "how often every TaskTemplate is registered again (repairs a database that was reset)")
	fs.DurationVar(&o.poll, "queue-poll", 15*time.Second, "how often WorkerPools read their queue depth and in-flight steps (status, and autoscaling)")
	fs.BoolVar(&o.skipMigrations, "skip-migrations", false, "do not apply database migrations at start")
	return cmd
}

func (o *managerOptions) run(ctx context.Context, logs io.Writer) error {
	if err := o.db.validate(); err != nil {
		return err
	}
	if o.workerImage == "" {
		return errors.New("--worker-image (or TASKER_WORKER_IMAGE) is required: the image WorkerPools run by default")
	}
	logger, err := o.logs.logger(logs)
	if err != nil {
		return err
	}
	ctrl.SetLogger(logr.FromSlogHandler(logger.Handler()))
	pool, err := pgxpool.New(ctx, o.db.url)
	if err != nil {
		return fmt.Errorf("connecting to the database: %w", err)
	}
	defer pool.Close()
	if !o.skipMigrations {
		if err := migrateUp(ctx, pool); err != nil {
			return err
		}
	}
	mgr, err := o.newManager(pool)
	if err != nil {
		return err
	}
	if err := controllers.SetupTaskTemplateController(mgr, controllers.TaskTemplateOptions{
		Templates: orchestration.NewTemplateStore(pool), ResyncInterval: o.resync,
	}); err != nil {
		return fmt.Errorf("setting up the TaskTemplate controller: %w", err)
	}
	if err := controllers.SetupWorkerPoolController(mgr, controllers.WorkerPoolOptions{ //nolint:contextcheck // setup registers watches; the manager runs them on its own context
		Database: pool, DefaultImage: o.workerImage, PollInterval: o.poll,
	}); err != nil {
		return fmt.Errorf("setting up the WorkerPool controller: %w", err)
	}
	logger.Info("manager starting", "leader_election", o.leaderElect)
	return mgr.Start(ctx)
}

// newManager builds the controller-runtime manager with probes (ready when
// the database answers), metrics and leader election.
func (o *managerOptions) newManager(pool *pgxpool.Pool) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(workflowsv1alpha1.AddToScheme(scheme))
	cfg := o.restConfig
	if cfg == nil {
		var err error
		if cfg, err = ctrl.GetConfig(); err != nil {
			return nil, fmt.Errorf("finding the Kubernetes API (in-cluster config or KUBECONFIG): %w", err)
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: o.metricsListen},
		HealthProbeBindAddress:  o.healthListen,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "tasker-operator.workflows.tasker.dev",
		LeaderElectionNamespace: o.leaderElectNS,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("database", func(r *http.Request) error { return pool.Ping(r.Context()) }); err != nil {
		return nil, err
	}
	return mgr, nil
}

// migrateUp applies the schema migrations (under the migrator's advisory lock).
func migrateUp(ctx context.Context, pool *pgxpool.Pool) error {
	migrator, err := migrate.New()
	if err != nil {
		return err
	}
	_, err = migrator.Up(ctx, pool)
	return err
}
