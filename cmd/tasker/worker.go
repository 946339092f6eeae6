package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/taskerops/tasker/internal/gctune"
	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers"
)

// workerOptions are the flags of `tasker worker`.
type workerOptions struct {
	db            databaseOptions
	logs          logOptions
	namespaces    string
	workerID      string
	concurrency   int
	healthListen  string
	metricsListen string
	pollInterval  time.Duration
	readGather    time.Duration
	visibility    time.Duration
	leaseMargin   time.Duration
	shutdownGrace time.Duration
}

func newWorkerCommand() *cobra.Command {
	var o workerOptions
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run step handlers for the given workflow namespaces",
		Long: `Run a worker: it reads the queues of the given workflow namespaces (woken by
LISTEN/NOTIFY, polling as the fallback), claims each step, hydrates it with its task
context and dependency results, publishes it on the in-process event bus, runs the
registered Go handler and records the outcome.

This binary's handlers are the five example workflows (linear_workflow,
diamond_workflow, tree_workflow, mixed_dag_workflow, order_fulfillment). To run your
own handlers, build a binary that registers them in a worker.Registry (see README).

On SIGTERM the worker stops reading, lets running steps finish within
--shutdown-grace, hands the others back to the queue, and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), cmd.ErrOrStderr()) },
	}
	fs := cmd.Flags()
	o.db.addFlags(fs)
	o.logs.addFlags(fs)
	fs.StringVar(&o.namespaces, "namespaces", envOr("TASKER_NAMESPACES", ""), "comma-separated workflow namespaces to serve (env TASKER_NAMESPACES)")
	fs.StringVar(&o.workerID, "worker-id", envOr("TASKER_WORKER_ID", ""), "name of this worker in claims and transitions (env TASKER_WORKER_ID; default worker@HOST:PID)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "steps in flight at once in this process")
	fs.StringVar(&o.healthListen, "health-listen", envOr("TASKER_HEALTH_LISTEN", ":8081"), "address for /healthz, /readyz (and /metrics unless --metrics-listen is set) (env TASKER_HEALTH_LISTEN)")
	fs.StringVar(&o.metricsListen, "metrics-listen", envOr("TASKER_METRICS_LISTEN", ""), "separate address for /metrics (env TASKER_METRICS_LISTEN)")
	fs.DurationVar(&o.pollInterval, "poll-interval", time.Second, "how often to read the queues when no notification arrives")
	fs.DurationVar(&o.readGather, "read-gather", 4*time.Millisecond, "after a round of reads that took 8 or more step messages, how long the next waits, once woken, before it reads (so that one read takes the steps of several commits); 0: no wait")
	fs.DurationVar(&o.visibility, "visibility-timeout", 30*time.Second, "how long a read step message stays hidden from other workers before it is claimed")
	fs.DurationVar(&o.leaseMargin, "lease-margin", 10*time.Second, "added to a step's timeout to make its claim lease; a worker silent that long after the timeout is presumed dead")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 30*time.Second, "how long running steps may take to finish on SIGTERM")
	return cmd
}

func (o *workerOptions) run(ctx context.Context, logs io.Writer) error {
	if err := o.db.validate(); err != nil {
		return err
	}
	gctune.Apply()
	logger, err := o.logs.logger(logs)
	if err != nil {
		return err
	}
	namespaces := splitList(o.namespaces)
	if len(namespaces) == 0 {
		return errors.New("--namespaces (or TASKER_NAMESPACES) is required, e.g. --namespaces linear_workflow,diamond_workflow")
	}
	registry := worker.NewRegistry()
	if err := handlers.RegisterAll(registry); err != nil {
		return err
	}
	pool, err := newPool(ctx, o.db.url, worker.PoolSize(o.concurrency))
	if err != nil {
		return err
	}
	defer pool.Close()
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	readGather := o.readGather
	if readGather == 0 {
		readGather = -1 // the flag's 0 turns the wait off; the Config's 0 means the default
	}
	w, err := worker.New(pool, worker.Config{
		WorkerID: o.workerID, Namespaces: namespaces, Registry: registry, Concurrency: o.concurrency,
		PollInterval: o.pollInterval, ReadGather: readGather, VisibilityTimeout: o.visibility, LeaseMargin: o.leaseMargin, ShutdownGrace: o.shutdownGrace,
		Metrics: metrics, Logger: logger,
	})
	if err != nil {
		return err
	}
	stopHTTP, err := o.serveProbes(ctx, logger, w, metrics)
	if err != nil {
		return err
	}
	defer stopHTTP()
	return w.Run(ctx)
}

// serveProbes serves /healthz, /readyz and /metrics; it returns a function
// that shuts the servers down.
func (o *workerOptions) serveProbes(ctx context.Context, logger *slog.Logger, w *worker.Worker, metrics *prometheus.Registry) (func(), error) {
	probes := http.NewServeMux()
	probes.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) { _, _ = rw.Write([]byte("ok\n")) })
	probes.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		readyCtx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := w.Ready(readyCtx); err != nil {
			http.Error(rw, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = rw.Write([]byte("ok\n"))
	})
	metricsHandler := promhttp.HandlerFor(metrics, promhttp.HandlerOpts{})
	servers := map[string]*http.ServeMux{o.healthListen: probes}
	if o.metricsListen == "" || o.metricsListen == o.healthListen {
		probes.Handle("GET /metrics", metricsHandler)
	} else {
		only := http.NewServeMux()
		only.Handle("GET /metrics", metricsHandler)
		servers[o.metricsListen] = only
	}
	var stops []func()
	for addr, mux := range servers {
		stop, err := serveProbe(ctx, logger, addr, mux)
		if err != nil {
			for _, s := range stops {
				s()
			}
			return nil, err
		}
		stops = append(stops, stop)
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}, nil
}

// serveProbe listens on addr and serves handler until the returned function is
// called, which shuts the server down gracefully.
func serveProbe(ctx context.Context, logger *slog.Logger, addr string, handler http.Handler) (func(), error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("HTTP server failed", "addr", ln.Addr().String(), "error", err)
		}
	}()
	logger.Info("serving probes", "addr", ln.Addr().String())
	return func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}, nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
