package contract

import (
	"io"
	"testing"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// BenchmarkContractEventView runs the ContractEvent processor (view path) on ledger 58752000.
func BenchmarkContractEventView(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewContractEvent, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkGetEventsRPC runs GetEventsRPC (view path, xdrFormat json) on ledger 58752000.
func BenchmarkGetEventsRPC(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewGetEventsRPC, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkContractEventFullDecode produces the same records the classic way: full decode of
// the ledger, LedgerTransactionReader, GetTransactionEvents.
func BenchmarkContractEventFullDecode(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	p := proctest.New(b, NewContractEvent, map[string]any{"network": "pubnet"}).(*ContractEvent)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		l, _ := proctest.Wrap(b, raw)
		lcm, err := l.Decoded()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fullDecodeEvents(p, *lcm); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}

func fullDecodeEvents(p *ContractEvent, lcm xdr.LedgerCloseMeta) ([]component.Record, error) {
	rd, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(network.PublicNetworkPassphrase, lcm)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var out []component.Record
	for {
		tx, err := rd.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		evs, err := tx.GetTransactionEvents()
		if err != nil {
			return nil, err
		}
		info := txInfo{seq: lcm.LedgerSequence(), index: int(tx.Index), closedAt: lcm.ClosedAt(),
			successful: tx.Result.Successful(), hash: tx.Hash.HexString(), id: processor.TransactionID(lcm.LedgerSequence(), int(tx.Index))}
		idx := 0
		one := func(ev xdr.ContractEvent, op, opIdx int) error {
			raw, err := ev.MarshalBinary()
			if err != nil {
				return err
			}
			rec, keep, err := p.event(info, raw, op, idx)
			rec.opEventIndex = opIdx
			idx++
			if keep {
				out = append(out, rec)
			}
			return err
		}
		for j, te := range evs.TransactionEvents {
			if err := one(te.Event, -1, j); err != nil {
				return nil, err
			}
		}
		for op, list := range evs.OperationEvents {
			for j, ev := range list {
				if err := one(ev, op, j); err != nil {
					return nil, err
				}
			}
		}
	}
}

// BenchmarkFullDecodeOnly is the floor of any full-decode processor: decoding 58752000 once
// (ledger.Decoded), nothing else.
func BenchmarkFullDecodeOnly(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		l, _ := proctest.Wrap(b, raw)
		if _, err := l.Decoded(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}

// BenchmarkContractInvocation runs ContractInvocation (view path: only the 101 Soroban
// transactions' envelopes, results and operation changes are decoded) on 58752000.
func BenchmarkContractInvocation(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewContractInvocation, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkContractCreation runs ContractCreation (view path; created instances are found by
// scanning the Soroban operations' changes through the view) on 58752000.
func BenchmarkContractCreation(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewContractCreation, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}

// benchTransformer runs a transformer of ContractEvent's records on the synthetic
// application events (the real ledgers carry none of its events).
func benchTransformer(b *testing.B, p component.Processor) {
	raw := synthAppEvents(b)
	events := proctest.Run(b, NewContractEvent, map[string]any{"network": "testnet"}, raw, nil)
	proctest.Bench(b, p, raw, events, false)
}

// BenchmarkSoroswap: Soroswap on the synthetic ledger's ContractEvent records.
func BenchmarkSoroswap(b *testing.B) { benchTransformer(b, proctest.New(b, NewSoroswap, nil)) }

// BenchmarkEventPaymentExtractor: EventPaymentExtractor on the same records.
func BenchmarkEventPaymentExtractor(b *testing.B) {
	benchTransformer(b, proctest.New(b, NewEventPaymentExtractor, nil))
}

// BenchmarkContractFilter: ContractFilter (the KALE contract) on 58752000's 18 events.
func BenchmarkContractFilter(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	events := proctest.Run(b, NewContractEvent, map[string]any{"network": "pubnet"}, raw, nil)
	proctest.Bench(b, proctest.New(b, NewContractFilter, map[string]any{"contract_id": "CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUOV"}), raw, events, false)
}

// BenchmarkContractData runs ContractData (full decode and the SDK's change reader) on
// 58752000; FilterEventsProcessor is ContractData with a predicate, at the same cost.
func BenchmarkContractData(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewContractData, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkFilterEventsProcessor: one contractId rule on 58752000.
func BenchmarkFilterEventsProcessor(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewFilterEventsProcessor, map[string]any{"network": "pubnet", "rules": []any{
		map[string]any{"field": "contract_id", "operator": "eq", "value": "CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"}}}),
		proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkSoroswapRouter: SoroswapRouter on its synthetic ledger's ContractEvent records.
func BenchmarkSoroswapRouter(b *testing.B) {
	raw := synthRouterEvents(b)
	events := proctest.Run(b, NewContractEvent, map[string]any{"network": "testnet"}, raw, nil)
	proctest.Bench(b, proctest.New(b, NewSoroswapRouter, nil), raw, events, false)
}

// BenchmarkContractInvocationExtractor: ContractInvocationExtractor (a schema for the KALE
// contract's plant, the farmer as funder) on 58752000's ContractInvocation records.
func BenchmarkContractInvocationExtractor(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	invs := proctest.Run(b, NewContractInvocation, map[string]any{"network": "pubnet"}, raw, nil)
	p := proctest.New(b, NewContractInvocationExtractor, map[string]any{"extraction_schemas": map[string]any{"kale": map[string]any{
		"function_name": "plant", "contract_ids": []any{"CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"},
		"extractors": map[string]any{"funder": map[string]any{"argument_index": 0, "field_type": "address"}}}}})
	proctest.Bench(b, p, raw, invs, false)
}
