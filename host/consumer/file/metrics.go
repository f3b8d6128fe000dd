package file

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
)

// newMetrics registers the cdp_pipeline_consumer_* counters of the component in its pipeline's
// registry (none when the Env has no registry, as in `cdpd validate`).
func newMetrics(env component.Env) *consumer.Metrics {
	var reg prometheus.Registerer
	if env.Metrics != nil {
		reg = env.Metrics
	}
	return consumer.NewMetrics(reg, env.Name)
}
