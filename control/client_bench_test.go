package control_test

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/server"
)

// timedServer records when heartbeats arrive.
type timedServer struct {
	*server.Server
	mu     sync.Mutex
	arrive []time.Time
}

func (s *timedServer) Heartbeat(ctx context.Context, req *flowctlv1.HeartbeatRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	s.arrive = append(s.arrive, time.Now())
	s.mu.Unlock()
	return s.Server.Heartbeat(ctx, req)
}

// BenchmarkHeartbeatThroughput drives 500 pipelines that are always due (a
// 1ms interval) through one connection to the real server on loopback, so the
// client runs at its concurrency bound: ns/op is the cost of one heartbeat;
// heartbeats/s and the client-side p99 RPC latency are reported.
func BenchmarkHeartbeatThroughput(b *testing.B) {
	for _, conc := range []int{4, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			ts := startServer(b, serverOpt{})
			promReg := prometheus.NewRegistry()
			c, stop := runClientB(b, control.Config{
				Endpoint: ts.addr, HeartbeatInterval: time.Millisecond, MaxConcurrent: conc,
				Registerer: promReg, Logger: slog.New(slog.DiscardHandler),
			})
			defer stop()
			for i := range 500 {
				c.Attach(reg(fmt.Sprintf("bench-%d", i)), newPipeline(map[string]float64{
					"pipeline.uptime_seconds": 1, "source.S.processed_ledgers": float64(i),
					"processor.P.events_found": 3, "consumer.C.files_written": 4,
				}, map[string]string{"pipeline_id": "x", "S_status": "healthy"}))
			}
			hb := func() float64 { return gatherValue(promReg, "cdpd_control_heartbeats_total") }
			for hb() < 1000 { // warm up: everything registered
				time.Sleep(10 * time.Millisecond)
			}
			b.ResetTimer()
			start, base := time.Now(), hb()
			for hb()-base < float64(b.N) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric((hb()-base)/elapsed.Seconds(), "heartbeats/s")
			b.ReportMetric(histQuantile(promReg, "cdpd_control_rpc_duration_seconds", "Heartbeat", 0.99)*1000, "p99-ms")
		})
	}
}

// BenchmarkSpread reports how evenly 500 pipelines with a 1s interval
// heartbeat: the busiest 50ms window against the mean (1.0 = perfectly even;
// 20 would be all at once).
func BenchmarkSpread(b *testing.B) {
	for range b.N {
		var timed *timedServer
		ts := startServer(b, serverOpt{wrap: func(s *server.Server) flowctlv1.ControlPlaneServiceServer {
			timed = &timedServer{Server: s}
			return timed
		}})
		c, stop := runClientB(b, control.Config{
			Endpoint: ts.addr, HeartbeatInterval: time.Second, Logger: slog.New(slog.DiscardHandler),
		})
		for i := range 500 {
			c.Attach(reg(fmt.Sprintf("spread-%d", i)), newPipeline(nil, nil))
		}
		time.Sleep(1500 * time.Millisecond) // registration burst and first heartbeats
		timed.mu.Lock()
		timed.arrive = nil
		timed.mu.Unlock()
		time.Sleep(2 * time.Second)
		stop()
		timed.mu.Lock()
		arr := timed.arrive
		timed.mu.Unlock()
		buckets := map[int64]int{}
		for _, a := range arr {
			buckets[a.UnixMilli()/50]++
		}
		most := 0
		for _, n := range buckets {
			most = max(most, n)
		}
		mean := float64(len(arr)) / 40
		b.ReportMetric(float64(most)/mean, "busiest/mean")
		b.ReportMetric(float64(len(arr))/2, "heartbeats/s")
		ts.stop()
	}
}

func runClientB(b *testing.B, cfg control.Config) (*control.Client, func()) {
	b.Helper()
	c, err := control.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			_ = c.Close()
		})
	}
	b.Cleanup(stop)
	return c, stop
}

func gatherValue(promReg *prometheus.Registry, name string) float64 {
	mfs, _ := promReg.Gather()
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// histQuantile estimates a quantile of a histogram series (upper bucket bound).
func histQuantile(promReg *prometheus.Registry, name, method string, q float64) float64 {
	mfs, _ := promReg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := false
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" && l.GetValue() == method {
					match = true
				}
			}
			if !match {
				continue
			}
			h := m.GetHistogram()
			want := q * float64(h.GetSampleCount())
			bs := h.GetBucket()
			sort.Slice(bs, func(i, j int) bool { return bs[i].GetUpperBound() < bs[j].GetUpperBound() })
			for _, bk := range bs {
				if float64(bk.GetCumulativeCount()) >= want {
					return bk.GetUpperBound()
				}
			}
		}
	}
	return 0
}
