package api

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

// openAPIDocument is the OpenAPI 3.1 description of every route.
//
//go:embed openapi.json
var openAPIDocument []byte

// healthz serves GET /healthz: the process is up and serving.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, Status{Status: "ok"})
	return nil
}

// readyz serves GET /readyz: ready when the database answers a query within
// ReadyTimeout, else 503 NOT_READY saying why.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if _, err := s.queries.CheckDatabase(ctx, s.pool); err != nil {
		if r.Context().Err() != nil {
			return r.Context().Err()
		}
		s.log.WarnContext(r.Context(), "not ready: the database check failed", "error", err)
		return errorf(http.StatusServiceUnavailable, CodeNotReady, "the database check failed (limit %s): %v", s.cfg.ReadyTimeout, err)
	}
	writeJSON(w, http.StatusOK, Status{Status: "ready"})
	return nil
}

// serveMetrics serves GET /metrics in the Prometheus formats.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.scrape.ServeHTTP(w, r)
	return nil
}

// openAPI serves GET /openapi.json.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDocument)
	return nil
}

// metrics are the server's Prometheus metrics.
type metrics struct {
	// requests counts answers by route pattern, method and status code.
	requests *prometheus.CounterVec
	// duration observes how long answers take, by route pattern.
	duration *prometheus.HistogramVec
	// tasksCreated counts tasks created through the API, by template.
	tasksCreated *prometheus.CounterVec
}

// newMetrics registers the metrics and the queue collector on reg, reusing
// the ones another Server registered there before.
func newMetrics(reg prometheus.Registerer, queues prometheus.Collector) *metrics {
	m := &metrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_http_requests_total",
			Help: "HTTP requests answered by the REST API, by route pattern, method and status code.",
		}, []string{"route", "method", "code"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tasker_http_request_duration_seconds",
			Help:    "Time the REST API took to answer, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"})),
		tasksCreated: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_tasks_created_total",
			Help: "Tasks created through the REST API, by workflow namespace and template name.",
		}, []string{"namespace", "name"})),
	}
	register(reg, queues)
	return m
}

// register registers c on reg, or returns the equal collector registered
// there already. Any other failure is a programming error.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if already, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil {
		panic("api: registering metrics: " + err.Error())
	}
	return c
}

// queueCollector measures every PGMQ queue at scrape time: the step queue
// of each workflow namespace and the orchestrator's two queues.
type queueCollector struct {
	pool    *pgxpool.Pool
	queries *dbsqlc.Queries
	queue   *queue.Client
	timeout time.Duration
	log     *slog.Logger
	depth   *prometheus.Desc
	visible *prometheus.Desc
}

func newQueueCollector(pool *pgxpool.Pool, timeout time.Duration, log *slog.Logger) *queueCollector {
	return &queueCollector{
		pool: pool, queries: dbsqlc.New(), queue: queue.New(), timeout: timeout, log: log,
		depth: prometheus.NewDesc("tasker_queue_depth",
			"Messages in the PGMQ queue, visible or not.", []string{"queue"}, nil),
		visible: prometheus.NewDesc("tasker_queue_visible",
			"Messages of the PGMQ queue that a read would return now.", []string{"queue"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.visible
}

// Collect implements prometheus.Collector. A queue that cannot be measured
// is left out of the scrape and logged; the rest are reported.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	names, err := c.queries.ListNamespaceQueues(ctx, c.pool)
	if err != nil {
		c.log.Warn("queue metrics: listing the namespace queues failed", "error", err)
	}
	names = append([]string{dispatch.ResultsQueue, dispatch.TaskRequestsQueue}, names...)
	for _, name := range names {
		m, err := c.queue.Metrics(ctx, c.pool, name)
		if ctx.Err() != nil {
			c.log.Warn("queue metrics: the measurements took too long", "limit", c.timeout, "error", err)
			return
		}
		if err != nil {
			c.log.Warn("queue metrics: measuring a queue failed", "queue", name, "error", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(m.Length), name)
		ch <- prometheus.MustNewConstMetric(c.visible, prometheus.GaugeValue, float64(m.Visible), name)
	}
}
