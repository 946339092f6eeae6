package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskerops/tasker/orchestration/dispatch"
)

// Metrics are the worker's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	startedTotal  *prometheus.CounterVec
	finishedTotal *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	dispatch      *prometheus.HistogramVec
	inFlight      prometheus.Gauge
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		startedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_steps_started_total", Help: "Steps whose handler started, by namespace and handler.",
		}, []string{"namespace", "handler"}),
		finishedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_steps_finished_total", Help: "Step attempts that ended, by namespace, handler and outcome (completed, failed_retryable, failed_permanent).",
		}, []string{"namespace", "handler", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tasker_step_duration_seconds", Help: "Handler run time per step attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"namespace", "handler"}),
		dispatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tasker_step_dispatch_latency_seconds", Help: "Time from a step's enqueue to its handler start.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"namespace"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tasker_steps_in_flight", Help: "Steps this worker is running.",
		}),
	}
	for _, c := range []prometheus.Collector{m.startedTotal, m.finishedTotal, m.duration, m.dispatch, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) started(namespace, handler string, dispatchLatency time.Duration) {
	if m == nil {
		return
	}
	m.startedTotal.WithLabelValues(namespace, handler).Inc()
	m.dispatch.WithLabelValues(namespace).Observe(max(dispatchLatency, 0).Seconds())
	m.inFlight.Inc()
}

// handedBack counts a step that stopped running without an outcome (the
// worker handed it back to its queue at shutdown): it is no longer in
// flight, and it did not finish.
func (m *Metrics) handedBack() {
	if m == nil {
		return
	}
	m.inFlight.Dec()
}

func (m *Metrics) finished(namespace, handler string, outcome dispatch.Outcome, took time.Duration) {
	if m == nil {
		return
	}
	m.inFlight.Dec()
	m.duration.WithLabelValues(namespace, handler).Observe(took.Seconds())
	label := "completed"
	if outcome.Error != nil {
		label = "failed_permanent"
		if outcome.Error.Retryable {
			label = "failed_retryable"
		}
	}
	m.finishedTotal.WithLabelValues(namespace, handler, label).Inc()
}
