package bench

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/support/datastore"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/host"
	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/loader"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// inproc is a host running in the benchmark process, with the built-in components plus Discard.
type inproc struct {
	h     *host.Host
	reg   *component.Registry
	sinks *Sinks
	ds    *fixture.Datastore
	rng   ledgerbackend.Range
	n     atomic.Int64 // pipeline names are unique per run: checkpoints never resume a run
}

func newInproc(b testing.TB, onRunning func(*host.Pipeline)) *inproc {
	b.Helper()
	return newInprocWith(b, func(o *host.Options) { o.OnRunning = onRunning })
}

// newInprocWith is newInproc with the host's options changed by mod.
func newInprocWith(b testing.TB, mod func(*host.Options)) *inproc {
	b.Helper()
	ds, rng := sharedDatastore(b)
	reg, err := builtin.Registry()
	must(b, err, "building the registry")
	sinks := &Sinks{}
	must(b, sinks.Register(reg), "registering Discard")
	state := b.TempDir()
	opts := host.Options{Registry: reg, StateDir: state}
	mod(&opts)
	h := host.New(opts)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = h.Close(ctx)
	})
	return &inproc{h: h, reg: reg, sinks: sinks, ds: ds, rng: rng}
}

// def is a bounded pipeline over the benchmark range: FS source -> proc -> Discard.
func (r *inproc) def(prefix, proc string, digest bool) *loader.Pipeline {
	name := fmt.Sprintf("%s-%d", prefix, r.n.Add(1))
	return &loader.Pipeline{
		Name: name, File: "bench.yaml", Line: 1, Restart: loader.RestartNever, Hash: name,
		Source: loader.Component{Type: "FSBufferedStorageSourceAdapter", Config: map[string]any{
			"path": r.ds.Dir, "network": "pubnet",
			"start_ledger": int(r.rng.From()), "end_ledger": int(r.rng.To()),
		}},
		Processors: []loader.Component{{Type: proc, Config: map[string]any{"network": "pubnet"}}},
		Consumers:  []loader.Component{{Type: DiscardType, Config: map[string]any{"digest": digest}}},
	}
}

// result of one pipeline run.
type pipeRun struct {
	Sample
	decodes int64
	sink    *Discard
}

// run adds defs, waits until every one completed and removes them. Units are the ledgers all of
// them processed.
func (r *inproc) run(ctx context.Context, defs ...*loader.Pipeline) (pipeRun, error) {
	var out pipeRun
	s, err := Measure(func() (int64, error) {
		for _, d := range defs {
			if err := r.h.Apply(ctx, loader.Event{Kind: loader.Add, Pipeline: d}); err != nil {
				return 0, fmt.Errorf("adding pipeline %s: %w", d.Name, err)
			}
		}
		var total int64
		for _, d := range defs {
			p, ok := r.h.Get(d.Name)
			if !ok {
				return 0, fmt.Errorf("pipeline %s vanished", d.Name)
			}
			if err := waitCompleted(ctx, p); err != nil {
				return 0, err
			}
			m := p.GetMetrics()
			total += int64(m["pipeline.ledgers_processed"])
			out.decodes += int64(m["pipeline.full_decodes"])
		}
		return total, nil
	})
	out.Sample = s
	if len(defs) == 1 {
		out.sink = r.sinks.Get(defs[0].Name)
	}
	for _, d := range defs {
		if rerr := r.h.Apply(ctx, loader.Event{Kind: loader.Remove, Pipeline: d}); rerr != nil && err == nil {
			err = fmt.Errorf("removing pipeline %s: %w", d.Name, rerr)
		}
	}
	return out, err
}

// waitCompleted polls the pipeline's status (every millisecond: a run lasts seconds).
func waitCompleted(ctx context.Context, p *host.Pipeline) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		in := p.Info()
		switch in.Status {
		case host.StatusCompleted:
			return nil
		case host.StatusFailed, host.StatusRestarting:
			return fmt.Errorf("pipeline %s %s: %s", in.Name, in.Status, in.LastError)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for pipeline %s (status %s, ledger %d): %w", in.Name, in.Status, in.CurrentLedger, ctx.Err())
		case <-t.C:
		}
	}
}

// bareLoop is what a program using the SDK directly does: the RawLedgers stream over the same
// datastore and range, each ledger wrapped without a copy (the bytes are used before the next
// iteration) and handed to the same processor code; the records are counted (and digested).
func bareLoop(ctx context.Context, ds *fixture.Datastore, rng ledgerbackend.Range, reg *component.Registry,
	proc string, digest *Digest) (Sample, error) {
	return bareLoopWith(ctx, ds, rng, reg, proc, digest, ledger.New)
}

// bareLoopWith is bareLoop with the wrapping of the borrowed bytes given (ledger.New: none,
// ledger.Copy: what a pipeline source does).
func bareLoopWith(ctx context.Context, ds *fixture.Datastore, rng ledgerbackend.Range, reg *component.Registry,
	proc string, digest *Digest, wrap func([]byte, *ledger.Decodes) (*ledger.Ledger, error)) (Sample, error) {
	var decodes ledger.Decodes
	pr, err := reg.NewProcessor(proc, map[string]any{"network": "pubnet"}, component.Env{
		Pipeline: "bare", Name: proc, Logger: slog.New(slog.DiscardHandler), Now: time.Now, Decodes: &decodes,
	})
	if err != nil {
		return Sample{}, fmt.Errorf("constructing %s: %w", proc, err)
	}
	sink := &Discard{digest: digest}
	return Measure(func() (int64, error) {
		st := ledgerbackend.NewBufferedStorageStream(bareBackendConfig, dataStoreConfig(ds), nil)
		var n int64
		for raw, err := range st.RawLedgers(ctx, rng) {
			if err != nil {
				return n, fmt.Errorf("bare loop: streaming: %w", err)
			}
			l, err := wrap(raw, &decodes)
			if err != nil {
				return n, err
			}
			recs, err := pr.Process(ctx, l, nil)
			if err != nil {
				return n, fmt.Errorf("bare loop: %w", err)
			}
			if err := sink.Consume(ctx, l, recs); err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	})
}

// classicLoop is the full-decode loop most CDP code runs today: BufferedStorageBackend.GetLedger
// (a full LedgerCloseMeta decode) -> LedgerTransactionReader -> GetTransactionEvents, each event
// re-encoded to the XDR the records carry and folded into digest in the ContractEvent
// processor's order (transaction-level events, then each operation's; diagnostic events are not
// emitted). It does less per event than the processor (no JSON rendering of topics and data),
// so the ratio against it is conservative.
func classicLoop(ctx context.Context, ds *fixture.Datastore, rng ledgerbackend.Range, digest *Digest) (Sample, error) {
	return Measure(func() (int64, error) {
		store, err := datastore.NewDataStore(ctx, dataStoreConfig(ds))
		if err != nil {
			return 0, err
		}
		defer store.Close()
		backend, err := ledgerbackend.NewBufferedStorageBackend(bareBackendConfig, store, ds.Schema())
		if err != nil {
			return 0, err
		}
		defer backend.Close()
		if err := backend.PrepareRange(ctx, rng); err != nil {
			return 0, err
		}
		var n int64
		for seq := rng.From(); seq <= rng.To(); seq++ {
			lcm, err := backend.GetLedger(ctx, seq)
			if err != nil {
				return n, fmt.Errorf("classic loop: ledger %d: %w", seq, err)
			}
			rd, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(network.PublicNetworkPassphrase, lcm)
			if err != nil {
				return n, err
			}
			for {
				tx, err := rd.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return n, err
				}
				evs, err := tx.GetTransactionEvents()
				if err != nil {
					return n, err
				}
				hash := hex.EncodeToString(tx.Hash[:])
				idx := 0
				add := func(ev xdr.ContractEvent, op int) error {
					if err := digestEvent(digest, hash, idx, op, ev); err != nil {
						return fmt.Errorf("classic loop: ledger %d tx %s event %d: %w", seq, hash, idx, err)
					}
					idx++
					return nil
				}
				for _, te := range evs.TransactionEvents {
					if err := add(te.Event, -1); err != nil {
						return n, err
					}
				}
				for op, list := range evs.OperationEvents {
					for _, ev := range list {
						if err := add(ev, op); err != nil {
							return n, err
						}
					}
				}
			}
			n++
		}
		return n, nil
	})
}

func digestEvent(d *Digest, txHash string, idx, op int, ev xdr.ContractEvent) error {
	raw, err := ev.MarshalBinary()
	if err != nil {
		return err
	}
	body, ok := ev.Body.GetV0()
	if !ok {
		return fmt.Errorf("contract event body version %d", ev.Body.V)
	}
	topics := make([]string, len(body.Topics))
	for i, t := range body.Topics {
		if topics[i], err = xdr.MarshalBase64(t); err != nil {
			return err
		}
	}
	data, err := xdr.MarshalBase64(body.Data)
	if err != nil {
		return err
	}
	// contract_event_xdr is the event wrapped as a DiagnosticEvent (inSuccessfulContractCall).
	evXDR := base64.StdEncoding.EncodeToString(append([]byte{0, 0, 0, 1}, raw...))
	d.Add(txHash, idx, op, evXDR, topics, data)
	return nil
}

// overhead compares one pipeline in the host with the bare loop, interleaved.
func overhead(b *testing.B, goal, proc string, reps int) {
	r := newInproc(b, nil)
	ctx := ctxFor(b, 10*time.Minute)
	var pipeDecodes int64
	c, err := Interleave(reps, func(int) (Sample, error) {
		res, err := r.run(ctx, r.def("overhead", proc, false))
		pipeDecodes = res.decodes
		return res.Sample, err
	}, func(int) (Sample, error) {
		return bareLoop(ctx, r.ds, r.rng, r.reg, proc, nil)
	})
	must(b, err, "%s", goal)
	Detail(goal, "%s; pipeline full decodes per run %d", c.Describe("cdpd pipeline", "bare SDK loop", "ledger"), pipeDecodes)
	Report(goal, c.Ratio(), AtLeast(0.95))
	b.ReportMetric(c.Ratio(), "ratio")
}

// BenchmarkPipelineOverhead (goal 1): ledgers/s of one ContractEvent (view path) pipeline, and
// separately one TokenTransfer (full decode) pipeline, in the host versus a bare SDK loop doing
// the same calls over the same ledgers. Goal >= 0.95x.
func BenchmarkPipelineOverhead(b *testing.B) {
	b.Run("ContractEvent", func(b *testing.B) { overhead(b, "overhead_contract_event", "ContractEvent", benchReps) })
	b.Run("TokenTransfer", func(b *testing.B) { overhead(b, "overhead_token_transfer", "TokenTransfer", 2) })
}

// BenchmarkFastPath (goal 1b): the ContractEvent pipeline (view path) versus the classic
// full-decode loop, identical events asserted (count and digest), zero full decodes in the
// pipeline (cdp_pipeline_full_decodes_total). Goal >= 4x.
func BenchmarkFastPath(b *testing.B) {
	const goal = "fastpath_contract_event"
	r := newInproc(b, nil)
	ctx := ctxFor(b, 10*time.Minute)
	var pipeDigest, classicDigest *Digest
	var decodes int64
	c, err := Interleave(2, func(int) (Sample, error) {
		res, err := r.run(ctx, r.def("fastpath", "ContractEvent", true))
		if err == nil {
			pipeDigest, decodes = res.sink.Digest(), res.decodes
		}
		return res.Sample, err
	}, func(int) (Sample, error) {
		classicDigest = &Digest{}
		return classicLoop(ctx, r.ds, r.rng, classicDigest)
	})
	must(b, err, "%s", goal)
	Detail(goal, "%s", c.Describe("cdpd ContractEvent pipeline", "classic full-decode loop", "ledger"))
	Detail(goal, "pipeline %s; classic loop %s; identical=%t; pipeline full decodes %d",
		pipeDigest, classicDigest, pipeDigest.Equal(classicDigest), decodes)
	ratio := c.Ratio()
	if !pipeDigest.Equal(classicDigest) || pipeDigest.Count() == 0 || decodes != 0 {
		Detail(goal, "FAIL: outputs differ or the pipeline decoded ledgers")
		ratio = 0
	}
	Report(goal, ratio, AtLeast(4))
	b.ReportMetric(ratio, "ratio")
}

// controlPlane is an in-process flowctl control plane on 127.0.0.1 that counts heartbeats.
type controlPlane struct {
	srv        *server.Server
	addr       string
	heartbeats atomic.Int64
	mu         sync.Mutex
	registered map[string]time.Time // service id -> first registration seen
	live       map[string]bool      // registered now
	beats      map[string][]time.Time
	keepBeats  atomic.Bool
}

func startControlPlane(b testing.TB) *controlPlane {
	b.Helper()
	srv, err := server.New(server.Options{Logger: slog.New(slog.DiscardHandler)})
	must(b, err, "creating the control plane")
	cp := &controlPlane{srv: srv, registered: map[string]time.Time{}, live: map[string]bool{}, beats: map[string][]time.Time{}}
	srv.AddObserver(func(ev server.ServiceEvent) {
		now := time.Now()
		switch ev.Kind {
		case server.EventRegistered:
			cp.mu.Lock()
			if _, ok := cp.registered[ev.ServiceID]; !ok {
				cp.registered[ev.ServiceID] = now
			}
			cp.live[ev.ServiceID] = true
			cp.mu.Unlock()
		case server.EventUnregistered:
			cp.mu.Lock()
			delete(cp.live, ev.ServiceID)
			cp.mu.Unlock()
		case server.EventHeartbeat:
			cp.heartbeats.Add(1)
			if cp.keepBeats.Load() {
				cp.mu.Lock()
				cp.beats[ev.ServiceID] = append(cp.beats[ev.ServiceID], now)
				cp.mu.Unlock()
			}
		}
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err, "listening for the control plane")
	cp.addr = lis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = server.Serve(ctx, lis, srv, nil)
	}()
	b.Cleanup(func() {
		cancel()
		<-done
		_ = srv.Close()
	})
	return cp
}

// registeredAt is when the service id first registered (zero if it did not).
func (cp *controlPlane) registeredAt(id string) time.Time {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.registered[id]
}

// BenchmarkControlPlaneOverhead (goal 2): the ContractEvent pipeline with a live control plane
// (in-process flowctl server on 127.0.0.1, control client with 1 s heartbeats attached to the
// pipeline) versus without, interleaved. Goal >= 0.99x.
func BenchmarkControlPlaneOverhead(b *testing.B) {
	const goal = "control_plane_overhead"
	ctx := ctxFor(b, 10*time.Minute)
	cp := startControlPlane(b)
	client, err := control.NewClient(control.Config{Endpoint: cp.addr, HeartbeatInterval: time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	must(b, err, "creating the control client")
	cctx, cancel := context.WithCancel(context.Background())
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		_ = client.Run(cctx)
	}()
	b.Cleanup(func() {
		cancel()
		<-clientDone
		_ = client.Close()
	})
	var attach atomic.Bool
	r := newInproc(b, func(p *host.Pipeline) {
		if attach.Load() {
			client.Attach(control.Registration{Name: p.Name()}, p)
		}
	})
	with := func(int) (Sample, error) {
		attach.Store(true)
		defer attach.Store(false)
		d := r.def("cp-with", "ContractEvent", false)
		h0 := cp.heartbeats.Load()
		res, err := r.run(ctx, d)
		if err != nil {
			return res.Sample, err
		}
		if n := cp.heartbeats.Load() - h0; n == 0 {
			return res.Sample, fmt.Errorf("no heartbeat reached the control plane during a %s run", res.Wall)
		}
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		return res.Sample, client.Detach(dctx, control.ServiceID("", d.Name))
	}
	without := func(int) (Sample, error) {
		res, err := r.run(ctx, r.def("cp-without", "ContractEvent", false))
		return res.Sample, err
	}
	h0 := cp.heartbeats.Load()
	c, err := Interleave(benchReps+2, with, without)
	must(b, err, "%s", goal)
	Detail(goal, "%s; %d heartbeats delivered", c.Describe("with control plane", "without", "ledger"), cp.heartbeats.Load()-h0)
	Report(goal, c.Ratio(), AtLeast(0.99))
	b.ReportMetric(c.Ratio(), "ratio")
}

// BenchmarkMultiCore (goal 5, figures only): aggregate ledgers/s of 1, 2 and 4 ContractEvent
// pipelines running at once in one host, and the scaling ratios against one pipeline.
func BenchmarkMultiCore(b *testing.B) {
	r := newInproc(b, nil)
	ctx := ctxFor(b, 10*time.Minute)
	rates := map[int]Sample{}
	for _, n := range []int{1, 2, 4, 1} { // one pipeline again at the end: drift check
		defs := make([]*loader.Pipeline, n)
		for i := range defs {
			defs[i] = r.def(fmt.Sprintf("multicore%d", n), "ContractEvent", false)
		}
		res, err := r.run(ctx, defs...)
		must(b, err, "running %d pipelines", n)
		if s, ok := rates[n]; ok {
			rates[n] = Sum([]Sample{s, res.Sample})
		} else {
			rates[n] = res.Sample
		}
	}
	one := rates[1].Rate()
	for _, n := range []int{2, 4} {
		name := fmt.Sprintf("multicore_%d_pipelines", n)
		Detail(name, "1 pipeline %.1f ledgers/s (%s CPU/ledger), %d pipelines %.1f ledgers/s in total (%s CPU/ledger) on %d cores",
			one, roundDur(rates[1].CPUPerUnit()), n, rates[n].Rate(), roundDur(rates[n].CPUPerUnit()), numCPU())
		Report(name, rates[n].Rate()/one, None)
	}
}

// BenchmarkLedgerCopy (item 6, figures only): what the copy of every ledger out of the SDK's
// borrowed buffer costs (host/source: ledger.Copy, 1.3 MB per pubnet ledger, needed because the
// ledger crosses goroutines), measured as the bare ContractEvent loop without the copy versus
// with it, and with a copy into a recycled buffer (what a buffer pool in host/ledger would do).
func BenchmarkLedgerCopy(b *testing.B) {
	ds, rng := sharedDatastore(b)
	reg, err := builtin.Registry()
	must(b, err, "building the registry")
	ctx := ctxFor(b, 10*time.Minute)
	loop := func(wrap func([]byte, *ledger.Decodes) (*ledger.Ledger, error)) func(int) (Sample, error) {
		return func(int) (Sample, error) { return bareLoopWith(ctx, ds, rng, reg, "ContractEvent", nil, wrap) }
	}
	var buf []byte
	recycled := func(raw []byte, d *ledger.Decodes) (*ledger.Ledger, error) {
		buf = append(buf[:0], raw...) // safe here: the previous ledger is done with
		return ledger.New(buf, d)
	}
	c, err := Interleave(benchReps, loop(ledger.New), loop(ledger.Copy))
	must(b, err, "copy comparison")
	Detail("ledger_copy_cost", "%s", c.Describe("no copy", "ledger.Copy", "ledger"))
	Report("ledger_copy_cost", c.CPURatio(), None)
	c, err = Interleave(benchReps, loop(recycled), loop(ledger.Copy))
	must(b, err, "recycled comparison")
	Detail("ledger_copy_recycled", "%s", c.Describe("copy into a recycled buffer", "ledger.Copy", "ledger"))
	Report("ledger_copy_recycled", c.CPURatio(), None)
}
