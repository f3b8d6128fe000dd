package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/processors/token_transfer"
	"github.com/stellar/go-stellar-sdk/support/datastore"

	"github.com/withobsrvr/cdpd/host"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// sdkTokenTransferLoop is the SDK's own token transfer loop: BufferedStorageBackend.GetLedger
// (a full decode) -> EventsProcessor.EventsFromLedger, each event folded into digest the way
// the Discard consumer folds a TokenTransferRecord.
func sdkTokenTransferLoop(ctx context.Context, ds *fixture.Datastore, rng ledgerbackend.Range, digest *Digest) (Sample, error) {
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
		proc := token_transfer.NewEventsProcessor(network.PublicNetworkPassphrase)
		var n int64
		for seq := rng.From(); seq <= rng.To(); seq++ {
			lcm, err := backend.GetLedger(ctx, seq)
			if err != nil {
				return n, fmt.Errorf("SDK loop: ledger %d: %w", seq, err)
			}
			events, err := proc.EventsFromLedger(lcm)
			if err != nil {
				return n, fmt.Errorf("SDK loop: ledger %d: %w", seq, err)
			}
			for i, ev := range events {
				var from, to, amount string
				switch e := ev.GetEvent().(type) {
				case *token_transfer.TokenTransferEvent_Transfer:
					from, to, amount = e.Transfer.GetFrom(), e.Transfer.GetTo(), e.Transfer.GetAmount()
				case *token_transfer.TokenTransferEvent_Mint:
					to, amount = e.Mint.GetTo(), e.Mint.GetAmount()
				case *token_transfer.TokenTransferEvent_Burn:
					from, amount = e.Burn.GetFrom(), e.Burn.GetAmount()
				case *token_transfer.TokenTransferEvent_Clawback:
					from, amount = e.Clawback.GetFrom(), e.Clawback.GetAmount()
				case *token_transfer.TokenTransferEvent_Fee:
					from, amount = e.Fee.GetFrom(), e.Fee.GetAmount()
				}
				m := ev.GetMeta()
				digest.AddTransfer(m.GetTxHash(), i, ev.GetEventType(), m.GetContractAddress(), from, to, amount)
			}
			n++
		}
		return n, nil
	})
}

// BenchmarkParallelDecode (issue 19): one TokenTransfer pipeline whose ledgers are decoded ahead
// by parallel workers (the default) versus the single decoder (decode inside the processor,
// host.Options.DecodeWorkers < 0), interleaved; both outputs must be identical to the SDK's
// own loop (same digest). Goal >= 1.7x on 2 cores.
func BenchmarkParallelDecode(b *testing.B) {
	const goal = "parallel_decode_token_transfer"
	ctx := ctxFor(b, 20*time.Minute)
	par := newInprocWith(b, func(*host.Options) {})
	single := newInprocWith(b, func(o *host.Options) { o.DecodeWorkers = -1 })
	var parDigest, singleDigest *Digest
	c, err := Interleave(2, func(int) (Sample, error) {
		res, err := par.run(ctx, par.def("decode-parallel", "TokenTransfer", true))
		if err == nil {
			parDigest = res.sink.Digest()
		}
		return res.Sample, err
	}, func(int) (Sample, error) {
		res, err := single.run(ctx, single.def("decode-single", "TokenTransfer", true))
		if err == nil {
			singleDigest = res.sink.Digest()
		}
		return res.Sample, err
	})
	must(b, err, "%s", goal)
	sdkDigest := &Digest{}
	sdk, err := sdkTokenTransferLoop(ctx, par.ds, par.rng, sdkDigest)
	must(b, err, "%s: SDK loop", goal)
	Detail(goal, "load average %s; %d workers; %s", loadAvg(), numCPU(), c.Describe("parallel decode", "single decoder", "ledger"))
	Detail(goal, "parallel %s; single %s; SDK loop %s (%.1f ledgers/s); identical=%t",
		parDigest, singleDigest, sdkDigest, sdk.Rate(), parDigest.Equal(sdkDigest) && singleDigest.Equal(sdkDigest))
	ratio := c.Ratio()
	if !parDigest.Equal(sdkDigest) || !singleDigest.Equal(sdkDigest) || sdkDigest.Count() == 0 {
		Detail(goal, "FAIL: outputs differ from the SDK loop's")
		ratio = 0
	}
	Report(goal, ratio, AtLeast(1.7))
	b.ReportMetric(ratio, "ratio")
}

// rawStream is the raw-stream limit: the SDK's RawLedgers stream over the benchmark range with
// the source's settings, each ledger only counted (read and decompress, nothing else).
func rawStream(ctx context.Context, ds *fixture.Datastore, rng ledgerbackend.Range) (Sample, error) {
	return Measure(func() (int64, error) {
		st := ledgerbackend.NewBufferedStorageStream(bareBackendConfig, dataStoreConfig(ds), nil)
		var n int64
		for _, err := range st.RawLedgers(ctx, rng) {
			if err != nil {
				return n, fmt.Errorf("raw stream: %w", err)
			}
			n++
		}
		return n, nil
	})
}

// BenchmarkRawStreamLimit (issue 19): one ContractEvent pipeline (its shared reader, the view
// path) versus the raw-stream limit measured in the same run (read and decompress only, same
// worker settings), interleaved. Goal >= 0.9x.
func BenchmarkRawStreamLimit(b *testing.B) {
	const goal = "contract_event_vs_raw_stream"
	r := newInproc(b, nil)
	ctx := ctxFor(b, 10*time.Minute)
	c, err := Interleave(benchReps, func(int) (Sample, error) {
		res, err := r.run(ctx, r.def("rawlimit", "ContractEvent", false))
		return res.Sample, err
	}, func(int) (Sample, error) {
		return rawStream(ctx, r.ds, r.rng)
	})
	must(b, err, "%s", goal)
	Detail(goal, "load average %s; %s", loadAvg(), c.Describe("ContractEvent pipeline", "raw stream", "ledger"))
	Report(goal, c.Ratio(), AtLeast(0.9))
	b.ReportMetric(c.Ratio(), "ratio")
}
