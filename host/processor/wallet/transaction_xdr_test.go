package wallet

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

// TestTransactionXDRRealLedgers: one record per transaction of the SDK's classic reader (full
// decode), in its order, without a full decode of its own; every XDR the record carries is byte
// for byte the reader's value re-encoded: the envelope (whose network hash is the record's
// transaction hash), the result pair and the meta; each operation's XDR is part of its
// envelope's.
func TestTransactionXDRRealLedgers(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		t.Run(fmt.Sprint(rl.Seq), func(t *testing.T) {
			_, txs := proctest.RefTxs(t, rl.Raw)
			in := []component.Record{fakeRecord{"x"}}
			p := proctest.New(t, NewTransactionXDRExtractor, map[string]any{"network": "pubnet"})
			l, decodes := proctest.Wrap(t, rl.Raw)
			recs, err := p.Process(proctest.BG, l, in)
			if err != nil {
				t.Fatal(err)
			}
			if decodes.Load() != 0 {
				t.Errorf("%d full decodes, want none (view path)", decodes.Load())
			}
			if len(recs) != len(txs)+1 || recs[0] != in[0] {
				t.Fatalf("%d records for %d transactions (and 1 forwarded)", len(recs), len(txs))
			}
			ops, failed := 0, 0
			for i, tx := range txs {
				r := recs[i+1].(TransactionXDRRecord)
				env := unb64(t, r.EnvelopeXDR)
				var e xdr.TransactionEnvelope
				if err := e.UnmarshalBinary(env); err != nil {
					t.Fatal(err)
				}
				hash, err := network.HashTransactionInEnvelope(e, network.PublicNetworkPassphrase)
				if err != nil || fmt.Sprintf("%x", hash) != r.TransactionHash || r.TransactionHash != tx.Hash.HexString() {
					t.Fatalf("tx %d: envelope hash %x, record %s, reader %s", i, hash, r.TransactionHash, tx.Hash.HexString())
				}
				res, meta := unb64(t, r.ResultXDR), unb64(t, r.ResultMetaXDR)
				for _, c := range []struct {
					got []byte
					v   interface{ MarshalBinary() ([]byte, error) }
				}{{env, tx.Envelope}, {res, tx.Result}, {meta, tx.UnsafeMeta}} {
					want, err := c.v.MarshalBinary()
					if err != nil || !bytes.Equal(c.got, want) {
						t.Fatalf("tx %s: %T differs from the reader's (%v)", r.TransactionHash, c.v, err)
					}
				}
				var pair xdr.TransactionResultPair
				if err := pair.UnmarshalBinary(res); err != nil || pair.TransactionHash.HexString() != r.TransactionHash {
					t.Fatalf("result pair: %v", err)
				}
				src := tx.Envelope.SourceAccount()
				if r.Success != tx.Result.Successful() || r.FeeCharged != int64(tx.Result.Result.FeeCharged) ||
					r.OperationCount != len(tx.Envelope.Operations()) || r.SourceAccount != src.ToAccountId().Address() ||
					r.TransactionIndex != int32(i+1) || r.LedgerSequence != rl.Seq || !r.Timestamp.Equal(l.CloseTime()) ||
					r.NaturalKey() != fmt.Sprintf("pubnet:%d:%s", rl.Seq, r.TransactionHash) {
					t.Fatalf("record %+v", r)
				}
				list, err := r.OperationList()
				if err != nil || len(list) != r.OperationCount {
					t.Fatalf("operations %v: %v", list, err)
				}
				for j, o := range list {
					b := unb64(t, o.OperationXDR)
					var op xdr.Operation
					if err := op.UnmarshalBinary(b); err != nil || op.Body.Type.String() != o.Type || o.Index != j || !bytes.Contains(env, b) {
						t.Fatalf("operation %d: %+v (%v)", j, o, err)
					}
				}
				ops += len(list)
				if !r.Success {
					failed++
				}
			}
			if failed == 0 {
				t.Error("no failed transaction checked")
			}
			t.Logf("ledger %d: %d transactions (%d failed), %d operations", rl.Seq, len(txs), failed, ops)
		})
	}
}

// fakeRecord is a record of an earlier processor of the chain.
type fakeRecord struct{ K string }

func (fakeRecord) RecordKind() string   { return "fake" }
func (f fakeRecord) NaturalKey() string { return f.K }
