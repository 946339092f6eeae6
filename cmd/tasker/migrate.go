package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/taskerops/tasker/orchestration/migrate"
)

func newMigrateCommand() *cobra.Command {
	var (
		db     databaseOptions
		logs   logOptions
		down   bool
		target int
	)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded schema migrations (or revert them with --down)",
		Long: `Apply every schema migration the database does not have yet, each in its own
transaction, under an advisory lock (so concurrent runs are safe). The orchestrator
does the same at start; run this as a Job or init step to migrate ahead of it.

With --down --to N, revert the migrations above version N instead (N=0 removes
tasker's tables; the tasker.schema_migrations bookkeeping table stays).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := db.validate(); err != nil {
				return err
			}
			logger, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if down && !cmd.Flags().Changed("to") {
				return errors.New("--down needs --to VERSION (0 reverts everything)")
			}
			return runMigrate(cmd.Context(), cmd.OutOrStdout(), logger, db.url, down, target)
		},
	}
	db.addFlags(cmd.Flags())
	logs.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&down, "down", false, "revert migrations instead of applying them")
	cmd.Flags().IntVar(&target, "to", 0, "with --down: the version to revert to")
	return cmd
}

func runMigrate(ctx context.Context, out io.Writer, logger *slog.Logger, url string, down bool, target int) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to the database: %w", err)
	}
	defer pool.Close()
	migrator, err := migrate.New()
	if err != nil {
		return err
	}
	var applied []migrate.Applied
	if down {
		applied, err = migrator.Down(ctx, pool, target)
	} else {
		applied, err = migrator.Up(ctx, pool)
	}
	for _, a := range applied {
		logger.Info("migration", "version", a.Version, "name", a.Name, "direction", a.Direction, "took", a.Duration, "note", a.Note)
	}
	if err != nil {
		return err
	}
	current, err := migrator.Current(ctx, pool)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "schema at version %d (%d migration(s) %s)\n", current, len(applied), map[bool]string{true: "reverted", false: "applied"}[down])
	return err
}
