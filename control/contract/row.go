package contract

import (
	"math"
	"strconv"
	"strings"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// Row is one service as `flowctl status` shows it in its table, read from what the control
// plane holds: the CLI computes it from ListComponents, our server from its registry for
// cdpd.v1 FleetService (so the two never disagree).
type Row struct {
	Instance string // metadata instance, else host; "" unknown
	// Shard and ShardCount of a sharded fleet's pipeline (metadata shard, shard_count);
	// ShardCount 0 when the service is not sharded.
	Shard, ShardCount int
	// Completed: a bounded pipeline that reached its end_ledger (reported HEALTHY with the
	// health detail status=completed).
	Completed bool
	// Uptime is the pipeline.uptime_seconds metric; HasUptime false when it is not reported.
	Uptime    float64
	HasUptime bool
	// Progress is a bounded pipeline's progress (the pipeline.progress_* metrics); nil
	// otherwise.
	Progress *Progress
}

// Progress is a bounded pipeline's progress through its range.
type Progress struct {
	Done, Total float64
	Rate        float64 // ledgers per second lately
	ETASeconds  float64 // -1: not known yet
}

// RowOf is the table row of a service's registration, status and merged metrics.
func RowOf(info *flowctlv1.ComponentInfo, st flowctlv1.HealthStatus, metrics map[string]string) Row {
	md := info.GetMetadata()
	r := Row{Instance: md[MetaInstance]}
	if r.Instance == "" {
		r.Instance = md[MetaHost]
	}
	if n, err := strconv.Atoi(md[MetaShardCount]); err == nil && n > 1 {
		r.ShardCount = n
		r.Shard, _ = strconv.Atoi(md[MetaShard])
	}
	r.Completed = st == flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY && metrics[HealthKey(DetailStatus)] == StateCompleted
	if v, ok := finite(metrics[MetricUptimeSeconds]); ok && v >= 0 {
		r.Uptime, r.HasUptime = v, true
	}
	if total, ok := finite(metrics[MetricProgressTotal]); ok && total > 0 {
		p := &Progress{Total: total, ETASeconds: -1}
		p.Done, _ = finite(metrics[MetricProgressDone])
		p.Rate, _ = finite(metrics[MetricProgressRate])
		if eta, ok := finite(metrics[MetricProgressETA]); ok {
			p.ETASeconds = eta
		}
		r.Progress = p
	}
	return r
}

func finite(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
}
