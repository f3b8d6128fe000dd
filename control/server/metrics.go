package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// registryCollector exports the registry size by status at scrape time.
type registryCollector struct{ s *Server }

var (
	registeredDesc = prometheus.NewDesc("cdp_control_registered_services",
		"Services registered with the control plane.", nil, nil)
	byStatusDesc = prometheus.NewDesc("cdp_control_services",
		"Registered services by health status.", []string{"status"}, nil)
)

func (c registryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- registeredDesc
	ch <- byStatusDesc
}

func (c registryCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.RLock()
	es := make([]*entry, 0, len(c.s.entries))
	for _, e := range c.s.entries {
		es = append(es, e)
	}
	c.s.mu.RUnlock()
	counts := make(map[flowctlv1.HealthStatus]int)
	for _, e := range es {
		e.mu.Lock()
		counts[e.status]++
		e.mu.Unlock()
	}
	ch <- prometheus.MustNewConstMetric(registeredDesc, prometheus.GaugeValue, float64(len(es)))
	for v := range flowctlv1.HealthStatus_name {
		st := flowctlv1.HealthStatus(v)
		ch <- prometheus.MustNewConstMetric(byStatusDesc, prometheus.GaugeValue, float64(counts[st]), contract.StatusName(st))
	}
}
