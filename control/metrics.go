package control

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// clientMetrics are the client's cdpd_control_* collectors.
type clientMetrics struct {
	heartbeats           prometheus.Counter
	heartbeatFailures    *prometheus.CounterVec
	registrations        prometheus.Counter
	registrationFailures *prometheus.CounterVec
	reregistrations      prometheus.Counter
	reconnects           prometheus.Counter
	attached             prometheus.Gauge
	registered           prometheus.Gauge
	refused              prometheus.Gauge
	rpcDuration          *prometheus.HistogramVec

	// rpcDuration's series per method, looked up on first use (not at start:
	// a method never called has no series).
	hbDuration, regDuration, unregDuration lazyObserver
}

// lazyObserver is one series of a vector, looked up once.
type lazyObserver struct {
	once sync.Once
	obs  prometheus.Observer
}

func (l *lazyObserver) get(vec *prometheus.HistogramVec, label string) prometheus.Observer {
	l.once.Do(func() { l.obs = vec.WithLabelValues(label) })
	return l.obs
}

func (m *clientMetrics) heartbeatDuration() prometheus.Observer {
	return m.hbDuration.get(m.rpcDuration, "Heartbeat")
}

func (m *clientMetrics) registerDuration() prometheus.Observer {
	return m.regDuration.get(m.rpcDuration, "RegisterComponent")
}

func (m *clientMetrics) unregisterDuration() prometheus.Observer {
	return m.unregDuration.get(m.rpcDuration, "UnregisterComponent")
}

func newClientMetrics(reg prometheus.Registerer) *clientMetrics {
	f := promauto.With(reg)
	return &clientMetrics{
		heartbeats: f.NewCounter(prometheus.CounterOpts{
			Name: "cdpd_control_heartbeats_total",
			Help: "Heartbeats the control plane accepted.",
		}),
		heartbeatFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "cdpd_control_heartbeat_failures_total",
			Help: "Heartbeats that failed, by gRPC status code.",
		}, []string{"code"}),
		registrations: f.NewCounter(prometheus.CounterOpts{
			Name: "cdpd_control_registrations_total",
			Help: "Pipeline registrations the control plane accepted.",
		}),
		registrationFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "cdpd_control_registration_failures_total",
			Help: "Pipeline registrations that failed, by gRPC status code.",
		}, []string{"code"}),
		reregistrations: f.NewCounter(prometheus.CounterOpts{
			Name: "cdpd_control_reregistrations_total",
			Help: "Registrations of pipelines the control plane had lost (a heartbeat was answered \"not found\").",
		}),
		reconnects: f.NewCounter(prometheus.CounterOpts{
			Name: "cdpd_control_reconnects_total",
			Help: "Times the connection to the control plane became ready again after being lost.",
		}),
		attached: f.NewGauge(prometheus.GaugeOpts{
			Name: "cdpd_control_attached_pipelines",
			Help: "Pipelines attached to the control-plane client.",
		}),
		registered: f.NewGauge(prometheus.GaugeOpts{
			Name: "cdpd_control_registered_pipelines",
			Help: "Attached pipelines whose last registration or heartbeat succeeded.",
		}),
		refused: f.NewGauge(prometheus.GaugeOpts{
			Name: "cdpd_control_refused_pipelines",
			Help: "Attached pipelines whose registration (or heartbeat) the control plane refused: registry full, permission denied, an id it will not take.",
		}),
		rpcDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cdpd_control_rpc_duration_seconds",
			Help:    "Duration of control-plane RPCs, including waiting for a connection.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method"}),
	}
}
