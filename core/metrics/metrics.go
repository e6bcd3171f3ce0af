// Package metrics defines the core's Prometheus collectors. Each server owns
// its own registry so that several servers can run in one test process.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector the core updates.
type Metrics struct {
	Registry *prometheus.Registry

	// TCP connections held by the listener (HTTP and WebSocket alike).
	TCPConnections prometheus.Gauge
	TCPShed        *prometheus.CounterVec // reason: max_conns, max_conns_per_ip
	AcceptRetries  prometheus.Counter

	Connections   prometheus.Gauge
	Handshakes    *prometheus.CounterVec // result: ok, unauthorized, forbidden_origin, draining
	FramesIn      *prometheus.CounterVec // type
	FramesOut     prometheus.Counter
	WriteBatches  prometheus.Counter
	Messages      prometheus.Counter
	Deliveries    prometheus.Counter
	FanoutSeconds prometheus.Histogram
	CommitBatch   prometheus.Histogram
	QueueDrops    prometheus.Counter
	SlowConsumers prometheus.Counter
	ErrorsSent    *prometheus.CounterVec // code

	// Plugins, labelled by plugin id and hook name.
	PluginCalls    *prometheus.CounterVec   // plugin, hook
	PluginErrors   *prometheus.CounterVec   // plugin, hook
	PluginTimeouts *prometheus.CounterVec   // plugin, hook
	PluginSeconds  *prometheus.HistogramVec // plugin, hook
	PluginBreaker  *prometheus.GaugeVec     // plugin, hook: 0 closed, 1 half-open, 2 open
	PluginRestarts *prometheus.CounterVec   // plugin
	PluginUp       *prometheus.GaugeVec     // plugin
	PluginDenied   *prometheus.CounterVec   // plugin, capability

	// Security event stream (core/secevent).
	SecurityEvents           prometheus.Counter
	SecurityEventsDropped    *prometheus.CounterVec // reason: queue_full, write_failed, unknown_type, closed
	SecurityEventsSuppressed prometheus.Counter
	SecurityEventsPruned     prometheus.Counter
	SecurityEventsDelivered  *prometheus.CounterVec // plugin
}

// New registers the collectors (and Go/process collectors) on a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry:       r,
		TCPConnections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "unhidra_tcp_connections", Help: "Open TCP connections (HTTP and WebSocket)."}),
		TCPShed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_tcp_shed_total",
			Help: "Connections closed at accept because a cap was reached, by cap."}, []string{"reason"}),
		AcceptRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_tcp_accept_retries_total",
			Help: "Accept errors (e.g. out of file descriptors) retried after a backoff."}),
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "unhidra_ws_connections", Help: "Open WebSocket sessions."}),
		Handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_ws_handshakes_total",
			Help: "WebSocket handshakes by result."}, []string{"result"}),
		FramesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_ws_frames_in_total",
			Help: "Client frames received, by type."}, []string{"type"}),
		FramesOut:    prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_ws_frames_out_total", Help: "Server frames written."}),
		WriteBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_ws_write_batches_total", Help: "Socket writes; frames_out/write_batches is the coalescing factor."}),
		Messages:     prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_messages_total", Help: "Messages committed."}),
		Deliveries:   prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_deliveries_total", Help: "Room frames handed to session queues."}),
		FanoutSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "unhidra_fanout_seconds",
			Help: "Time to hand one room frame to every subscriber's queue.", Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10)}),
		CommitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "unhidra_commit_batch_ops",
			Help: "Ops per group-commit transaction.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		QueueDrops:    prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_ws_queue_drops_total", Help: "Frames dropped because a session queue was full."}),
		SlowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_ws_slow_consumers_total", Help: "Sessions closed as slow consumers."}),
		ErrorsSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_errors_total",
			Help: "Error frames and REST errors sent, by code."}, []string{"code"}),
		PluginCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_plugin_hook_calls_total",
			Help: "Hook calls made to plugins (including bypassed ones), by plugin and hook."}, []string{"plugin", "hook"}),
		PluginErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_plugin_hook_errors_total",
			Help: "Hook calls that failed (error, timeout, unavailable, bypassed by the breaker, invalid answer)."}, []string{"plugin", "hook"}),
		PluginTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_plugin_hook_timeouts_total",
			Help: "Hook calls that missed their deadline."}, []string{"plugin", "hook"}),
		PluginSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "unhidra_plugin_hook_seconds",
			Help: "Hook round-trip latency.", Buckets: prometheus.ExponentialBuckets(10e-6, 2.5, 12)}, []string{"plugin", "hook"}),
		PluginBreaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "unhidra_plugin_breaker_state",
			Help: "Circuit breaker per plugin and hook: 0 closed, 1 half-open, 2 open."}, []string{"plugin", "hook"}),
		PluginRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_plugin_restarts_total",
			Help: "Plugin process starts after a crash or failed start."}, []string{"plugin"}),
		PluginUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "unhidra_plugin_up",
			Help: "1 when the plugin process is running and activated."}, []string{"plugin"}),
		PluginDenied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_plugin_host_denied_total",
			Help: "Host-API calls refused because they are outside the plugin's grants."}, []string{"plugin", "capability"}),
		SecurityEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_security_events_total",
			Help: "Security events written to the outbox."}),
		SecurityEventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_security_events_dropped_total",
			Help: "Security events lost before the outbox, by reason."}, []string{"reason"}),
		SecurityEventsSuppressed: prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_security_events_suppressed_total",
			Help: "Rate-limit refusals not emitted as events (one per limit and client per second is)."}),
		SecurityEventsPruned: prometheus.NewCounter(prometheus.CounterOpts{Name: "unhidra_security_events_pruned_total",
			Help: "Security events deleted from the bounded outbox."}),
		SecurityEventsDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unhidra_security_events_delivered_total",
			Help: "Security events acknowledged by a plugin's OnSecurityEvents."}, []string{"plugin"}),
	}
	r.MustRegister(m.TCPConnections, m.TCPShed, m.AcceptRetries, m.Connections, m.Handshakes, m.FramesIn, m.FramesOut, m.WriteBatches, m.Messages,
		m.Deliveries, m.FanoutSeconds, m.CommitBatch, m.QueueDrops, m.SlowConsumers, m.ErrorsSent,
		m.PluginCalls, m.PluginErrors, m.PluginTimeouts, m.PluginSeconds, m.PluginBreaker, m.PluginRestarts,
		m.PluginUp, m.PluginDenied,
		m.SecurityEvents, m.SecurityEventsDropped, m.SecurityEventsSuppressed, m.SecurityEventsPruned, m.SecurityEventsDelivered,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
