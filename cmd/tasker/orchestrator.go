package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/taskerops/tasker/internal/gctune"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/orchestration/migrate"
)

// orchestratorHelp is the long help of `tasker orchestrator`.
const orchestratorHelp = `Run the orchestration engine and its REST API until SIGTERM or SIGINT. It migrates
the database at start (under an advisory lock), then processes step results from
orchestration_step_results (woken by LISTEN/NOTIFY, polling as the fallback),
enqueues the steps that become ready, finalizes tasks, and sweeps for due retries
and for steps whose worker died. Run as many replicas as you like: correctness
comes from row locks and SKIP LOCKED, not from leader election.

The REST API (tasks, step recovery, templates, /healthz, /readyz, /metrics and
/openapi.json) listens on --listen. With --api-token-file, every /v1/ request
needs the header "Authorization: Bearer <token>".`

func newOrchestratorCommand() *cobra.Command {
	var (
		db            databaseOptions
		logs          logOptions
		server        apiOptions
		cfg           orchestration.Config
		skipMigration bool
	)
	cmd := &cobra.Command{
		Use:   "orchestrator",
		Short: "Run the orchestration engine and its REST API: step readiness, result processing, retries, recovery",
		Long:  orchestratorHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := db.validate(); err != nil {
				return err
			}
			gctune.Apply()
			logger, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			token, err := server.token()
			if err != nil {
				return err
			}
			cfg.Logger = logger
			if cfg.CreateBatchWait == 0 {
				cfg.CreateBatchWait = -1 // the flag's 0 turns the wait off; the Config's 0 means the default
			}
			return runOrchestrator(cmd.Context(), logger, db.url, cfg, server, token, !skipMigration)
		},
	}
	db.addFlags(cmd.Flags())
	logs.addFlags(cmd.Flags())
	server.addFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&cfg.ProcessID, "process-id", envOr("TASKER_PROCESS_ID", ""), "name recorded in the transition history (env TASKER_PROCESS_ID; default orchestrator@HOST:PID)")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", time.Second, "how often to look for results when no notification arrives")
	fs.DurationVar(&cfg.SweepInterval, "sweep-interval", 5*time.Second, "how often to look for due retries and expired claims")
	fs.DurationVar(&cfg.LeaseGrace, "lease-grace", 30*time.Second, "how long after a claim expired the sweeper re-enqueues the step itself")
	fs.DurationVar(&cfg.CreateBatchWait, "create-batch-wait", 2*time.Millisecond, "after a shared task-creation transaction of several tasks, how long the next waits for as many more creations (clients creating tasks one after another); 0: no wait")
	fs.IntVar(&cfg.ResultBatchSize, "result-batch-size", 64, "result messages read per round")
	fs.IntVar(&cfg.ResultWorkers, "result-workers", 8, "results that the batch transaction did not settle (failures, duplicates, ...) processed at once, each in its own transaction (the pool gets this many connections more than 8)")
	fs.BoolVar(&skipMigration, "skip-migrations", false, "do not apply migrations at start")
	return cmd
}

// apiOptions are the flags of the orchestrator's REST API.
type apiOptions struct {
	// listen is the address the API listens on.
	listen string
	// tokenFile names a file holding the API's bearer token.
	tokenFile string
	// shutdownTimeout bounds how long requests in flight may finish at
	// shutdown.
	shutdownTimeout time.Duration
}

func (o *apiOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.listen, "listen", envOr("TASKER_LISTEN", ":8080"), "address of the REST API, host:port (env TASKER_LISTEN)")
	fs.StringVar(&o.tokenFile, "api-token-file", os.Getenv("TASKER_API_TOKEN_FILE"),
		"file holding the bearer token that /v1/ requests must carry; unset: no authentication (env TASKER_API_TOKEN_FILE)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long API requests in flight may take to finish at shutdown")
}

// token reads the token file, when one is named.
func (o *apiOptions) token() (string, error) {
	if o.tokenFile == "" {
		return "", nil
	}
	data, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--api-token-file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("--api-token-file: %s is empty; it must hold the API's bearer token", o.tokenFile)
	}
	return token, nil
}

func runOrchestrator(ctx context.Context, logger *slog.Logger, url string, cfg orchestration.Config, server apiOptions, token string, migrateFirst bool) error {
	// A connection per result goroutine, plus the reader, the sweeper and
	// the API's requests.
	pool, err := newPool(ctx, url, cfg.ResultWorkers+8)
	if err != nil {
		return err
	}
	defer pool.Close()
	if migrateFirst {
		if err := migrateAtStart(ctx, logger, pool); err != nil {
			return err
		}
	}
	var lc net.ListenConfig
	listener, err := lc.Listen(ctx, "tcp", server.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	engine := orchestration.NewEngine(pool, cfg)
	handler := api.NewServer(engine, pool, api.Config{Token: token, Logger: logger, Registerer: newOrchestratorRegistry()}).Handler()
	logger.Info("API listening", "addr", listener.Addr().String(), "auth", token != "")
	return runEngineAndAPI(ctx, logger, engine, newAPIHTTPServer(handler, logger), listener, server.shutdownTimeout)
}

// migrateAtStart applies the pending migrations and logs each one.
func migrateAtStart(ctx context.Context, logger *slog.Logger, pool *pgxpool.Pool) error {
	migrator, err := migrate.New()
	if err != nil {
		return err
	}
	applied, err := migrator.Up(ctx, pool)
	if err != nil {
		return err
	}
	for _, a := range applied {
		logger.Info("applied migration", "version", a.Version, "name", a.Name, "took", a.Duration, "note", a.Note)
	}
	return nil
}

// runEngineAndAPI runs the engine and the API until ctx ends or either of
// them fails, then shuts the API down gracefully and stops the engine.
func runEngineAndAPI(ctx context.Context, logger *slog.Logger, engine *orchestration.Engine, srv *http.Server, listener net.Listener, shutdownTimeout time.Duration) error {
	engineCtx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(engineCtx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()

	var err error
	engineStopped := false
	select {
	case <-ctx.Done():
	case serveErr := <-served:
		err = fmt.Errorf("the API server stopped: %w", serveErr)
	case err = <-engineDone:
		engineStopped = true
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if shutdownErr := srv.Shutdown(shutdownCtx); shutdownErr != nil {
		logger.Warn("API requests did not finish in time; closing their connections", "error", shutdownErr)
		_ = srv.Close()
	}
	stopEngine()
	if !engineStopped {
		err = errors.Join(err, <-engineDone)
	}
	logger.Info("orchestrator stopped")
	return err
}

// newAPIHTTPServer wraps the API handler with timeouts that protect the
// server from slow clients.
func newAPIHTTPServer(handler http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// newOrchestratorRegistry is the process's metrics registry: the API's
// metrics plus the Go runtime and process collectors.
func newOrchestratorRegistry() *prometheus.Registry {
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return registry
}
