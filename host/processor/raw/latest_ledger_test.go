package raw

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestLatestLedgerMatchesSDK compares the view-based summary with numbers computed here through
// the SDK's full decode (LedgerTransactionReader), and checks no full decode happened.
func TestLatestLedgerMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		p := proctest.New(t, NewLatestLedger, map[string]any{"network": "pubnet"})
		l, decodes := proctest.Wrap(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := decodes.Load(); n != 0 {
			t.Fatalf("ledger %d: %d full decodes, want 0", rl.Seq, n)
		}
		if len(recs) != 1 {
			t.Fatalf("ledger %d: %d records, want 1", rl.Seq, len(recs))
		}
		got := recs[0].(LedgerSummary)

		lcm, txs := proctest.RefTxs(t, rl.Raw)
		want := LedgerSummary{
			Network:         "pubnet",
			Sequence:        lcm.LedgerSequence(),
			Hash:            lcm.LedgerHash().HexString(),
			PreviousHash:    lcm.PreviousLedgerHash().HexString(),
			ClosedAt:        l.CloseTime(),
			ProtocolVersion: uint32(lcm.ProtocolVersion()),
			BaseFee:         uint32(lcm.LedgerHeaderHistoryEntry().Header.BaseFee),
		}
		for _, tx := range txs {
			want.TransactionCount++
			ops := len(tx.Envelope.Operations())
			want.OperationCount += ops
			want.TotalFeeCharged += int64(tx.Result.Result.FeeCharged)
			if tx.Result.Successful() {
				want.SuccessfulTxCount++
				want.SuccessfulOpCount += ops
			} else {
				want.FailedTxCount++
			}
			if sd, ok := tx.GetSorobanData(); ok {
				want.SorobanTxCount++
				want.TotalSorobanFees += int64(sd.ResourceFee)
				want.ResourceInstrTotal += uint64(sd.Resources.Instructions)
				if ext, ok := sorobanExtV1(tx.UnsafeMeta); ok {
					want.SorobanInclFees += uint64(int64(tx.Result.Result.FeeCharged) -
						int64(ext.TotalNonRefundableResourceFeeCharged) - int64(ext.TotalRefundableResourceFeeCharged))
				}
			}
		}
		if got != want {
			t.Errorf("ledger %d:\n got %+v\nwant %+v", rl.Seq, got, want)
		}
		if want.TransactionCount == 0 || want.FailedTxCount == 0 {
			t.Errorf("ledger %d: fixture expected to carry successful and failed transactions: %+v", rl.Seq, want)
		}
		if got.NaturalKey() != "pubnet:"+proctest.Itoa(int64(rl.Seq)) {
			t.Errorf("natural key %q", got.NaturalKey())
		}
		st := p.(interface{ Stats() map[string]float64 }).Stats()
		if st["processed_ledgers"] != 1 || st["last_ledger"] != float64(rl.Seq) || st["transactions"] != float64(want.TransactionCount) {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d txs (%d failed), %d ops, soroban %d, fees %d",
			rl.Seq, got.TransactionCount, got.FailedTxCount, got.OperationCount, got.SorobanTxCount, got.TotalFeeCharged)
	}
}

// TestLatestLedgerCarriesLatestLedgerRPCFields checks that the summary has every output field
// of upstream's LatestLedgerRPC (its JSON names), so LatestLedgerRPC can be an alias.
func TestLatestLedgerCarriesLatestLedgerRPCFields(t *testing.T) {
	got := proctest.JSONOf(t, LedgerSummary{})
	for _, f := range []string{"sequence", "hash", "transaction_count", "operation_count", "successful_tx_count",
		"failed_tx_count", "total_fee_charged", "closed_at", "base_fee", "soroban_tx_count", "total_soroban_fees",
		"total_resource_instructions"} {
		if _, ok := got[f]; !ok {
			t.Errorf("LedgerSummary has no %q field", f)
		}
	}
}

func sorobanExtV1(meta xdr.TransactionMeta) (xdr.SorobanTransactionMetaExtV1, bool) {
	switch meta.V {
	case 3:
		if sm := meta.V3.SorobanMeta; sm != nil && sm.Ext.V == 1 {
			return *sm.Ext.V1, true
		}
	case 4:
		if sm := meta.V4.SorobanMeta; sm != nil && sm.Ext.V == 1 {
			return *sm.Ext.V1, true
		}
	}
	return xdr.SorobanTransactionMetaExtV1{}, false
}

func TestNetworkConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg      map[string]any
		pipeline string // the pipeline's (source's) network
		want     string
		wantErr  bool
	}{
		{map[string]any{}, "testnet", "testnet", false},
		{map[string]any{}, "Public Global Stellar Network ; September 2015", "pubnet", false},
		{map[string]any{}, "Standalone Network ; February 2017", "custom-", false},
		{map[string]any{"network": "futurenet"}, "pubnet", "futurenet", false},
		{map[string]any{"network": "mainnet"}, "", "pubnet", false},
		{map[string]any{"network": "testnet"}, "", "testnet", false},
		{map[string]any{"network_passphrase": "Test SDF Future Network ; October 2022"}, "", "futurenet", false},
		{map[string]any{"network_passphrase": "Standalone Network ; February 2017"}, "", "custom-", false},
		{map[string]any{"network": "pubnet", "network_passphrase": "Test SDF Network ; September 2015"}, "", "", true},
		{map[string]any{"network": "moonnet"}, "", "", true},
		{map[string]any{}, "", "", true},
		{map[string]any{"network": "pubnet", "bogus_key": 1}, "", "", true},
	} {
		var c latestLedgerConfig
		err := component.Decode(tc.cfg, &c)
		var n processor.NetID
		if err == nil {
			n, err = c.Resolve(tc.pipeline)
		}
		if (err != nil) != tc.wantErr {
			t.Errorf("%v in a %q pipeline: err %v, wantErr %v", tc.cfg, tc.pipeline, err, tc.wantErr)
			continue
		}
		if err == nil {
			if len(n.Name) < len(tc.want) || n.Name[:len(tc.want)] != tc.want {
				t.Errorf("%v: name %q, want %q", tc.cfg, n.Name, tc.want)
			}
		}
	}
}
