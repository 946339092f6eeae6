package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/taskerops/tasker/internal/pgxcodec"
	"github.com/taskerops/tasker/internal/version"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tasker",
		Short: "Tasker runs DAG workflows whose steps are executed by Go step handlers",
		Long: `Tasker runs DAG workflows ("tasks") whose steps are executed by Go step handlers.
Workflow state lives in PostgreSQL; steps travel between the orchestrator and the
workers over PGMQ queues woken by LISTEN/NOTIFY. One binary serves every role:
the subcommand picks it.

Every flag can also be set with the environment variable named in its help.`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newMigrateCommand(), newOrchestratorCommand(), newWorkerCommand(), newTaskCommand(), newTemplateCommand(), newManagerCommand(), newDevCommand())
	return root
}

// logOptions are the logging flags every long-running role has.
type logOptions struct {
	level  string
	format string
}

func (o *logOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.level, "log-level", envOr("TASKER_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env TASKER_LOG_LEVEL)")
	fs.StringVar(&o.format, "log-format", envOr("TASKER_LOG_FORMAT", "text"), "log format: text or json (env TASKER_LOG_FORMAT)")
}

// logger returns a logger that writes to w (the command's stderr).
func (o *logOptions) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", o.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(o.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format: %q is not one of text, json", o.format)
	}
}

// databaseOptions holds the --database-url flag of every role that uses
// the database.
type databaseOptions struct {
	url string
}

func (o *databaseOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.url, "database-url", os.Getenv("TASKER_DATABASE_URL"),
		"PostgreSQL connection URL, e.g. postgres://user:pass@host:5432/tasker (env TASKER_DATABASE_URL)")
}

func (o *databaseOptions) validate() error {
	if o.url == "" {
		return errors.New("--database-url (or TASKER_DATABASE_URL) is required")
	}
	return nil
}

// envOr returns the environment variable's value, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// newPool connects to the database with a pool of at least conns
// connections, or exactly the pool_max_conns that the URL gives. pgx's
// default (the larger of 4 and the number of CPUs) would make a worker's
// handlers, or an orchestrator's result goroutines, queue for connections.
func newPool(ctx context.Context, url string, conns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("--database-url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, int32(min(conns, math.MaxInt32)))
	}
	// uuid parameters and columns in pgx's binary format, not through
	// google/uuid's database/sql methods (see internal/pgxcodec).
	afterConnect := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		pgxcodec.Register(conn.TypeMap())
		if afterConnect != nil {
			return afterConnect(ctx, conn)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the database: %w", err)
	}
	return pool, nil
}
