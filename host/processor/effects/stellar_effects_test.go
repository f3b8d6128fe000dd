package effects

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/strkey"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestStellarEffectsRealLedgers checks, operation by operation, the effects of every
// successful transaction of both real ledgers against the test's independent count (refEffects),
// and the records' fields and keys.
func TestStellarEffectsRealLedgers(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		t.Run(fmt.Sprint(rl.Seq), func(t *testing.T) {
			_, txs := proctest.RefTxs(t, rl.Raw)
			p := proctest.New(t, NewStellarEffects, map[string]any{"network": "pubnet"})
			l, decodes := proctest.Wrap(t, rl.Raw)
			recs, err := p.Process(proctest.BG, l, nil)
			if err != nil {
				t.Fatal(err)
			}
			if decodes.Load() != 1 {
				t.Errorf("%d decodes, want 1", decodes.Load())
			}
			type opKey struct {
				hash string
				op   int
			}
			got := map[opKey]map[string]int{}
			keys := map[string]bool{}
			for _, r := range recs {
				e := r.(EffectRecord)
				if keys[e.NaturalKey()] {
					t.Fatalf("duplicate key %s", e.NaturalKey())
				}
				keys[e.NaturalKey()] = true
				k := opKey{e.TransactionHash, e.OperationIndex}
				if got[k] == nil {
					got[k] = map[string]int{}
				}
				got[k][e.TypeString]++
				checkRecord(t, e, rl.Seq)
			}
			byOpType, byEffect := map[string][2]int{}, map[string][2]int{}
			wantTotal := 0
			for _, tx := range txs {
				if !tx.Result.Successful() {
					continue
				}
				for i, op := range tx.Envelope.Operations() {
					want := refEffects(tx, i)
					k := opKey{tx.Hash.HexString(), i}
					if fmt.Sprint(want) != fmt.Sprint(got[k]) && !(len(want) == 0 && len(got[k]) == 0) {
						t.Errorf("tx %s op %d (%s): effects %v, independent count %v", k.hash, i, op.Body.Type, got[k], want)
					}
					delete(got, k)
					ot := op.Body.Type.String()
					c := byOpType[ot]
					for name, n := range want {
						c[1] += n
						wantTotal += n
						b := byEffect[name]
						b[1] += n
						byEffect[name] = b
					}
					byOpType[ot] = c
				}
			}
			for k, v := range got {
				t.Errorf("effects of an operation the reference has none for (failed tx?): %v %v", k, v)
			}
			opTypes := map[string][]string{}
			for _, tx := range txs {
				for _, op := range tx.Envelope.Operations() {
					opTypes[tx.Hash.HexString()] = append(opTypes[tx.Hash.HexString()], op.Body.Type.String())
				}
			}
			for _, r := range recs {
				e := r.(EffectRecord)
				ot := opTypes[e.TransactionHash][e.OperationIndex]
				c := byOpType[ot]
				c[0]++
				byOpType[ot] = c
				b := byEffect[e.TypeString]
				b[0]++
				byEffect[e.TypeString] = b
			}
			if len(recs) != wantTotal || wantTotal == 0 {
				t.Errorf("%d effects, independent count %d", len(recs), wantTotal)
			}
			t.Logf("ledger %d: %d effects; by operation type (got, independent): %v", rl.Seq, len(recs), sortedCounts(byOpType))
			t.Logf("by effect type: %v", sortedCounts(byEffect))
			st := p.(component.StatsReporter).Stats()
			if st["effects_found"] != float64(len(recs)) || st["transactions_processed"] != float64(len(txs)) {
				t.Errorf("stats %v", st)
			}
		})
	}
}

func checkRecord(t *testing.T, e EffectRecord, seq uint32) {
	t.Helper()
	if e.LedgerSequence != seq || e.TypeString != hz.EffectTypeNames[hz.EffectType(e.Type)] ||
		e.OperationID != processor.OperationID(seq, e.TransactionIndex, e.OperationIndex) ||
		e.EffectID != fmt.Sprintf("%d-%d", e.OperationID, e.EffectIndex) || !strkey.IsValidEd25519PublicKey(e.Address) ||
		e.NaturalKey() != fmt.Sprintf("pubnet:%d:%s", seq, e.EffectID) {
		t.Fatalf("record %+v", e)
	}
	var d map[string]any
	if err := json.Unmarshal(e.Details, &d); err != nil || d == nil {
		t.Fatalf("details %s: %v", e.Details, err)
	}
	if e.AddressMuxed != nil && !strkey.IsValidMuxedAccountEd25519PublicKey(*e.AddressMuxed) {
		t.Fatalf("address_muxed %s", *e.AddressMuxed)
	}
}

func sortedCounts(m map[string][2]int) []string {
	var out []string
	for k, v := range m {
		if v[0] != v[1] {
			out = append(out, fmt.Sprintf("%s=%d!=%d", k, v[0], v[1]))
		} else {
			out = append(out, fmt.Sprintf("%s=%d", k, v[0]))
		}
	}
	sort.Strings(out)
	return out
}
