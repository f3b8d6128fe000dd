package contract

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

type refChange struct {
	key        string
	changeType xdr.LedgerEntryChangeType
	contract   string
	txHash     string
}

// refContractData walks each transaction's meta changes (tx.GetChanges) in apply order.
func refContractData(t testing.TB, raw []byte) []refChange {
	t.Helper()
	lcm, txs := proctest.RefTxs(t, raw)
	var out []refChange
	for _, tx := range txs {
		chs, err := tx.GetChanges()
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chs {
			if ch.Type != xdr.LedgerEntryTypeContractData {
				continue
			}
			e := ch.Post
			if e == nil {
				e = ch.Pre
			}
			k, _ := e.LedgerKey()
			kb, _ := k.MarshalBinary()
			sum := sha256.Sum256(kb)
			c, _ := e.Data.MustContractData().Contract.String()
			out = append(out, refChange{
				key:        fmt.Sprintf("pubnet:%d:%d:%s", lcm.LedgerSequence(), len(out), hex.EncodeToString(sum[:])),
				changeType: ch.ChangeType, contract: c, txHash: tx.Hash.HexString(),
			})
		}
	}
	return out
}

func TestContractDataMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		want := refContractData(t, rl.Raw)
		p := proctest.New(t, NewContractData, map[string]any{"network": "mainnet"})
		l, _ := proctest.Wrap(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(want) {
			t.Fatalf("ledger %d: %d changes, SDK reports %d", rl.Seq, len(recs), len(want))
		}
		kinds := map[string]int{}
		var gk, wk []string
		for i, r := range recs {
			g, w := r.(ContractDataRecord), want[i]
			gk, wk = append(gk, g.NaturalKey()), append(wk, w.key)
			kinds[g.ChangeType]++
			if g.NaturalKey() != w.key || g.LedgerEntryChange != uint32(w.changeType) || g.ContractID != w.contract ||
				g.TransactionHash == nil || *g.TransactionHash != w.txHash || g.Deleted != (g.ChangeType == "removed") ||
				len(g.KeyDecoded) == 0 || len(g.ValDecoded) == 0 || g.LedgerSequence != rl.Seq {
				t.Fatalf("ledger %d change %d: got %+v want %+v", rl.Seq, i, g, w)
			}
		}
		if proctest.Checksum(gk) != proctest.Checksum(wk) {
			t.Fatal("key checksum differs")
		}
		st := p.(interface{ Stats() map[string]float64 }).Stats()
		if st["changes_found"] != float64(len(want)) || st["updated"] != float64(kinds["updated"]) {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d contract data changes %v", rl.Seq, len(recs), kinds)
	}
}

func TestContractDataFilter(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	want := refContractData(t, rl.Raw)
	n := map[string]int{}
	top := ""
	for _, w := range want {
		n[w.contract]++
		if top == "" || n[w.contract] > n[top] {
			top = w.contract
		}
	}
	for _, key := range []string{"contract_ids", "contract_id"} {
		p := proctest.New(t, NewContractData, map[string]any{"network": "pubnet", key: top})
		l := proctest.Shared(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != n[top] || n[top] == len(want) {
			t.Fatalf("%s: %d changes for %s, want %d of %d", key, len(recs), top, n[top], len(want))
		}
		for _, r := range recs {
			if r.(ContractDataRecord).ContractID != top {
				t.Fatalf("%s: filter let through %+v", key, r)
			}
		}
	}
	if _, err := component.Construct(NewContractData, map[string]any{"network": "pubnet", "contract_ids": "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"}, proctest.Env()); err == nil {
		t.Error("account id accepted as contract id")
	}
}
