// Package api is the orchestrator's REST API: an HTTP server over the
// orchestration engine (tasks, manual step recovery, templates, probes,
// Prometheus metrics and an OpenAPI document), and a Go client for it.
//
// Every answer is JSON; every error is
// {"error": {"code": "...", "message": "...", "details": [...]}}.
package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration"
)

// Config configures a Server. The zero value of every field means "use the
// default", applied in one place by withDefaults.
type Config struct {
	// Token, when set, is the bearer token every /v1/ request must carry.
	// Empty: no authentication. Probes, /metrics and /openapi.json are
	// always open.
	Token string
	// Logger receives request logs (debug level) and errors. Default:
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the server's metrics. Default: a new registry.
	Registerer prometheus.Registerer
	// Gatherer is what GET /metrics serves. Default: Registerer when it is
	// also a Gatherer, else prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// ReadyTimeout bounds the database check of GET /readyz. Default 2s.
	ReadyTimeout time.Duration
	// QueueMetricsTimeout bounds the queue measurements of one scrape.
	// Default 5s.
	QueueMetricsTimeout time.Duration
	// MaxBodyBytes bounds request bodies; larger ones get 413. Default 1 MiB.
	MaxBodyBytes int64
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		registry := prometheus.NewRegistry()
		c.Registerer = registry
		if c.Gatherer == nil {
			c.Gatherer = registry
		}
	}
	if c.Gatherer == nil {
		if g, ok := c.Registerer.(prometheus.Gatherer); ok {
			c.Gatherer = g
		} else {
			c.Gatherer = prometheus.DefaultGatherer
		}
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 2 * time.Second
	}
	if c.QueueMetricsTimeout <= 0 {
		c.QueueMetricsTimeout = 5 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	return c
}

// Server serves the REST API. Its handler is safe for concurrent use.
type Server struct {
	engine  *orchestration.Engine
	pool    *pgxpool.Pool
	queries *dbsqlc.Queries
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	// tokenHash is the SHA-256 of cfg.Token, compared in constant time.
	tokenHash [32]byte
	// scrape serves GET /metrics.
	scrape http.Handler
	// handler is the whole API: routes, fallback and middleware.
	handler http.Handler
}

// NewServer returns a Server over the engine and its database pool, and
// registers its metrics (a queue-depth collector among them) on
// cfg.Registerer. Metrics already registered there by another Server are
// shared.
func NewServer(engine *orchestration.Engine, pool *pgxpool.Pool, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		engine: engine, pool: pool, queries: dbsqlc.New(), cfg: cfg, log: cfg.Logger,
		tokenHash: hashToken(cfg.Token),
	}
	s.metrics = newMetrics(cfg.Registerer, newQueueCollector(pool, cfg.QueueMetricsTimeout, cfg.Logger))
	s.scrape = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slogErrorLog{cfg.Logger}})
	s.handler = s.build(s.routes())
	return s
}

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.handler }

// slogErrorLog adapts a slog.Logger to promhttp's error log.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) {
	l.log.Error("serving metrics failed", "error", fmt.Sprint(v...))
}
