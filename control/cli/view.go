package cli

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// Service is one service as the commands show it; its JSON form is what `status --json` and
// `list -o json` print.
type Service struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Status string `json:"status"`
	// UptimeSeconds is the pipeline.uptime_seconds metric when the service reports it (the
	// pipeline's own uptime at its last heartbeat), else the time since its registration.
	UptimeSeconds int64             `json:"uptime_seconds"`
	RegisteredAt  *time.Time        `json:"registered_at"`
	LastHeartbeat *time.Time        `json:"last_heartbeat"`
	Metadata      map[string]string `json:"metadata"`
	// Metrics are the heartbeat metrics except health.*, as numbers where they parse.
	Metrics map[string]any `json:"metrics"`
	// Health are the health.* metrics without the prefix.
	Health map[string]string `json:"health"`
	// Instance is the daemon that runs it (metadata instance, else host); empty when unknown.
	Instance string `json:"instance,omitempty"`
	// Shard is "K/N" for a pipeline of a sharded fleet (metadata shard, shard_count), else
	// empty.
	Shard string `json:"shard,omitempty"`
	// Completed is set for a bounded pipeline that reached its end_ledger (reported healthy,
	// shown as completed).
	Completed bool `json:"completed,omitempty"`
	// Progress is a bounded pipeline's progress (the pipeline.progress_* metrics).
	Progress *Progress `json:"progress,omitempty"`
	// The rest of the registration, where set.
	Description      string   `json:"description,omitempty"`
	Endpoint         string   `json:"endpoint,omitempty"`
	InputEventTypes  []string `json:"input_event_types,omitempty"`
	OutputEventTypes []string `json:"output_event_types,omitempty"`

	rawMetrics map[string]string
}

// Progress is a bounded pipeline's progress through its range, as its heartbeats report it.
type Progress struct {
	Done  float64 `json:"done_ledgers"`
	Total float64 `json:"total_ledgers"`
	// Rate is ledgers per second lately; ETASeconds the time left at that rate, -1 unknown.
	Rate       float64 `json:"rate_ledgers_per_second"`
	ETASeconds float64 `json:"eta_seconds"`
}

// Percent is done / total in percent.
func (p *Progress) Percent() float64 {
	if p.Total <= 0 {
		return 0
	}
	return 100 * min(p.Done, p.Total) / p.Total
}

// progressFrom converts the contract's progress (nil stays nil).
func progressFrom(p *contract.Progress) *Progress {
	if p == nil {
		return nil
	}
	return &Progress{Done: p.Done, Total: p.Total, Rate: p.Rate, ETASeconds: p.ETASeconds}
}

// shardText is the SHARD column: "K/N" in a sharded fleet, "" otherwise.
func shardText(shard, count int) string {
	if count < 2 {
		return ""
	}
	return strconv.Itoa(shard) + "/" + strconv.Itoa(count)
}

// shownStatus is the STATUS the commands show: the wire status, or completed for a bounded
// pipeline that reached its end (the wire has no such status: it is reported healthy).
func (s Service) shownStatus() string {
	if s.Completed {
		return contract.StateCompleted
	}
	return s.Status
}

func newService(st *flowctlv1.ComponentStatusResponse, now time.Time) Service {
	info := st.GetComponent()
	s := Service{
		ID:         info.GetId(),
		Name:       info.GetName(),
		Type:       contract.ServiceType(info),
		Status:     contract.StatusName(st.GetStatus()),
		Metadata:   map[string]string{},
		Metrics:    map[string]any{},
		Health:     map[string]string{},
		rawMetrics: st.GetMetrics(),
	}
	for k, v := range info.GetMetadata() {
		s.Metadata[k] = v
	}
	if ts := st.GetRegisteredAt(); ts != nil && ts.AsTime().Unix() > 0 {
		t := ts.AsTime().UTC()
		s.RegisteredAt = &t
	}
	if ts := st.GetLastHeartbeat(); ts != nil && ts.AsTime().Unix() > 0 {
		t := ts.AsTime().UTC()
		s.LastHeartbeat = &t
	}
	for k, v := range st.GetMetrics() {
		if h, ok := contract.CutHealth(k); ok {
			s.Health[h] = v
			continue
		}
		s.Metrics[k] = jsonValue(v)
	}
	row := contract.RowOf(info, st.GetStatus(), st.GetMetrics())
	s.UptimeSeconds = uptimeSeconds(row, s.RegisteredAt, now)
	s.Instance, s.Shard, s.Completed = row.Instance, shardText(row.Shard, row.ShardCount), row.Completed
	s.Progress = progressFrom(row.Progress)
	s.Description, s.Endpoint = info.GetDescription(), info.GetEndpoint()
	s.InputEventTypes, s.OutputEventTypes = info.GetInputEventTypes(), info.GetOutputEventTypes()
	return s
}

func uptimeSeconds(row contract.Row, registered *time.Time, now time.Time) int64 {
	if row.HasUptime {
		return int64(row.Uptime)
	}
	if registered != nil && now.After(*registered) {
		return int64(now.Sub(*registered) / time.Second)
	}
	return 0
}

// jsonValue is a metric value for JSON: a number where it parses as a finite one, else the
// string.
func jsonValue(v string) any {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return v
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return f
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// formatDuration renders a duration the way the status table does: "45s", "23m 10s",
// "4h 23m", "3d 4h" (two units at most, a zero second unit left out: "1h", "5m").
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	two := func(a int64, ua string, b int64, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%d%s", a, ua)
		}
		return fmt.Sprintf("%d%s %d%s", a, ua, b, ub)
	}
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return two(s/60, "m", s%60, "s")
	case s < 86400:
		return two(s/3600, "h", s%3600/60, "m")
	}
	return two(s/86400, "d", s%86400/3600, "h")
}

// formatNumber renders a float without exponent and without trailing zeros (at most three
// decimals).
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// errorDetail is the most telling reason in a service's health details why it is not
// healthy: an error message, else the components that are not healthy.
func errorDetail(health map[string]string) string {
	for _, k := range contract.ErrorDetails {
		if v := health[k]; v != "" {
			return v
		}
	}
	for _, k := range sortedKeys(health) {
		if strings.Contains(strings.ToLower(k), "error") && health[k] != "" {
			return health[k]
		}
	}
	var bad []string
	for _, k := range sortedKeys(health) {
		if strings.HasSuffix(k, "_status") && health[k] != "" && health[k] != contract.StateHealthy {
			bad = append(bad, fmt.Sprintf("%s %s", strings.TrimSuffix(k, "_status"), health[k]))
		}
	}
	return strings.Join(bad, ", ")
}

// closeMatches returns up to 5 ids close to want: the service's name, an id containing it, or
// an id, name or id without "cdp-" within a small edit distance; the closest first.
func closeMatches(want string, services []Service) []string {
	type cand struct {
		id   string
		dist int
	}
	lw := strings.ToLower(want)
	var cs []cand
	for _, s := range services {
		lid := strings.ToLower(s.ID)
		d := min(levenshtein(lw, lid), levenshtein(lw, strings.ToLower(s.Name)),
			levenshtein(lw, strings.TrimPrefix(lid, "cdp-")))
		switch {
		case strings.EqualFold(s.Name, want):
			d = 0
		case lw != "" && (strings.Contains(lid, lw) || strings.Contains(lw, lid)):
			d = min(d, 1)
		case d > max(2, len(lw)/3):
			continue
		}
		cs = append(cs, cand{s.ID, d})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].dist != cs[j].dist {
			return cs[i].dist < cs[j].dist
		}
		return cs[i].id < cs[j].id
	})
	var out []string
	for i := 0; i < len(cs) && i < 5; i++ {
		out = append(out, cs[i].id)
	}
	return out
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
