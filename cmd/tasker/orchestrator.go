package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/migrate"
)

func newOrchestratorCommand() *cobra.Command {
	var (
		db            databaseOptions
		logs          logOptions
		cfg           orchestration.Config
		skipMigration bool
	)
	cmd := &cobra.Command{
		Use:   "orchestrator",
		Short: "Run the orchestration engine: step readiness, result processing, retries, recovery",
		Long: `Run the orchestration engine until SIGTERM or SIGINT. It migrates the database at
start (under an advisory lock), then processes step results from
orchestration_step_results (woken by LISTEN/NOTIFY, polling as the fallback),
enqueues the steps that become ready, finalizes tasks, and sweeps for due retries
and for steps whose worker died. Run as many replicas as you like: correctness
comes from row locks and SKIP LOCKED, not from leader election.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := db.validate(); err != nil {
				return err
			}
			logger, err := logs.logger()
			if err != nil {
				return err
			}
			cfg.Logger = logger
			return runOrchestrator(cmd.Context(), logger, db.url, cfg, !skipMigration)
		},
	}
	db.addFlags(cmd.Flags())
	logs.addFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&cfg.ProcessID, "process-id", envOr("TASKER_PROCESS_ID", ""), "name recorded in the transition history (env TASKER_PROCESS_ID; default orchestrator@HOST:PID)")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", time.Second, "how often to look for results when no notification arrives")
	fs.DurationVar(&cfg.SweepInterval, "sweep-interval", 5*time.Second, "how often to look for due retries and expired claims")
	fs.DurationVar(&cfg.LeaseGrace, "lease-grace", 30*time.Second, "how long after a claim expired the sweeper re-enqueues the step itself")
	fs.IntVar(&cfg.ResultBatchSize, "result-batch-size", 64, "result messages read per round")
	fs.BoolVar(&skipMigration, "skip-migrations", false, "do not apply migrations at start")
	return cmd
}

func runOrchestrator(ctx context.Context, logger *slog.Logger, url string, cfg orchestration.Config, migrateFirst bool) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to the database: %w", err)
	}
	defer pool.Close()
	if migrateFirst {
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
	}
	return orchestration.NewEngine(pool, cfg).Run(ctx)
}
