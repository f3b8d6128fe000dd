package raw

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestPassthroughForwardsInputAndLedger: the input records come out unchanged and in order,
// followed by the ledger, whose fields match the SDK's decode and whose XDR is the ledger's.
func TestPassthroughForwardsInputAndLedger(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		in := proctest.Run(t, NewLedgerReader, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		p := proctest.New(t, NewPassthrough, map[string]any{"network": "pubnet"})
		l, decodes := proctest.Wrap(t, rl.Raw)
		out, err := p.Process(proctest.BG, l, in)
		if err != nil {
			t.Fatal(err)
		}
		if decodes.Load() != 0 {
			t.Fatalf("ledger %d: a full decode", rl.Seq)
		}
		if len(out) != len(in)+1 {
			t.Fatalf("ledger %d: %d records out of %d in", rl.Seq, len(out), len(in))
		}
		for i := range in {
			if out[i] != in[i] {
				t.Fatalf("ledger %d: record %d changed", rl.Seq, i)
			}
		}
		got := out[len(in)].(PassthroughLedger)
		var lcm xdr.LedgerCloseMeta
		if err := xdr.SafeUnmarshal(rl.Raw, &lcm); err != nil {
			t.Fatal(err)
		}
		h := lcm.LedgerHeaderHistoryEntry().Header
		v1 := lcm.MustV1()
		if got.LedgerSequence != rl.Seq || got.LedgerHash != lcm.LedgerHash().HexString() || got.ProtocolVersion != uint32(h.LedgerVersion) ||
			got.CloseTime != int64(h.ScpValue.CloseTime) || got.BaseFee != uint32(h.BaseFee) || got.BaseReserve != uint32(h.BaseReserve) ||
			got.MaxTxSetSize != uint32(h.MaxTxSetSize) || got.TransactionCount != len(v1.TxProcessing) || got.LedgerVersion != lcm.V ||
			*got.TotalByteSizeSorobanState != uint64(v1.TotalByteSizeOfLiveSorobanState) || *got.EvictedKeysCount != len(v1.EvictedKeys) {
			t.Errorf("ledger %d: %+v", rl.Seq, got)
		}
		b, err := base64.StdEncoding.DecodeString(*got.LedgerXDRBase64)
		if err != nil || !bytes.Equal(b, rl.Raw) || *got.LedgerXDRSizeBytes != len(rl.Raw) {
			t.Errorf("ledger %d: ledger_xdr_base64 is not the ledger (%v)", rl.Seq, err)
		}
		if got.NaturalKey() != "pubnet:"+proctest.Itoa(int64(rl.Seq)) {
			t.Errorf("key %q", got.NaturalKey())
		}
		t.Logf("ledger %d: %d records forwarded, %d txs, %d evicted keys", rl.Seq, len(in), got.TransactionCount, *got.EvictedKeysCount)
	}
}

func TestPassthroughWithoutXDR(t *testing.T) {
	raw := proctest.RealLedgers(t)[0].Raw
	out := proctest.Run(t, NewPassthrough, map[string]any{"network": "pubnet", "include_full_xdr": false, "add_metadata": true}, raw, []component.Record(nil))
	if len(out) != 1 {
		t.Fatalf("%d records", len(out))
	}
	if r := out[0].(PassthroughLedger); r.LedgerXDRBase64 != nil || r.LedgerXDRSizeBytes != nil || r.TransactionCount == 0 {
		t.Errorf("%+v", r)
	}
}
