package contract

import (
	"testing"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

func TestRowOf(t *testing.T) {
	healthy := flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY
	info := func(md map[string]string) *flowctlv1.ComponentInfo { return &flowctlv1.ComponentInfo{Metadata: md} }
	r := RowOf(info(map[string]string{MetaInstance: "cdpd-1", MetaHost: "node", MetaShard: "1", MetaShardCount: "3"}), healthy,
		map[string]string{MetricUptimeSeconds: "12.5", MetricProgressDone: "5", MetricProgressTotal: "10", MetricProgressETA: "x",
			HealthKey(DetailStatus): StateCompleted})
	if r.Instance != "cdpd-1" || r.Shard != 1 || r.ShardCount != 3 || !r.Completed || !r.HasUptime || r.Uptime != 12.5 ||
		r.Progress == nil || r.Progress.Done != 5 || r.Progress.Total != 10 || r.Progress.ETASeconds != -1 {
		t.Errorf("sharded, completed, with progress: %+v %+v", r, r.Progress)
	}
	r = RowOf(info(map[string]string{MetaHost: "node", MetaShard: "0", MetaShardCount: "1"}), flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED,
		map[string]string{HealthKey(DetailStatus): StateCompleted, MetricUptimeSeconds: "-3", MetricProgressTotal: "0"})
	if r.Instance != "node" || r.ShardCount != 0 || r.Completed || r.HasUptime || r.Progress != nil {
		t.Errorf("unsharded, degraded (so not completed), no uptime, no progress: %+v", r)
	}
}
