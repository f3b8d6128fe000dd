package account

import (
	"fmt"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/host/processor/raw"
)

// checkAccounts compares AccountData's records with the reference changes record for record.
func checkAccounts(t *testing.T, seq uint32, raw []byte, recs []component.Record) map[string]int {
	t.Helper()
	want := refChanges(t, raw, xdr.LedgerEntryTypeAccount)
	counts := rawChangeCounts(t, raw, xdr.LedgerEntryTypeAccount)
	if got := countByType(want); fmt.Sprint(got) != fmt.Sprint(counts) {
		t.Fatalf("ledger %d: the reference disagrees with the raw count: %v vs %v", seq, got, counts)
	}
	if len(recs) != len(want) || len(want) == 0 {
		t.Fatalf("ledger %d: %d account records, the SDK reports %d changes", seq, len(recs), len(want))
	}
	kinds := map[string]int{}
	var gk, wk []string
	for i, r := range recs {
		g, w := r.(AccountRecord), want[i]
		e := entryOf(w)
		a := e.Data.MustAccount()
		wkey := fmt.Sprintf("pubnet:%d:%d:%s", seq, i, a.AccountId.Address())
		gk, wk = append(gk, g.NaturalKey()), append(wk, wkey)
		kinds[g.ChangeType]++
		if g.NaturalKey() != wkey || g.LedgerEntryChange != uint32(w.ChangeType) || g.Balance != fmt.Sprint(int64(a.Balance)) ||
			g.Sequence != int64(a.SeqNum) || g.Deleted != (w.ChangeType == xdr.LedgerEntryChangeTypeLedgerEntryRemoved) ||
			g.LastModifiedLedger != uint32(e.LastModifiedLedgerSeq) || g.LedgerSequence != seq ||
			g.MasterWeight != uint32(a.Thresholds[0]) || g.HighThreshold != uint32(a.Thresholds[3]) {
			t.Fatalf("ledger %d change %d: got %+v, SDK change %v", seq, i, g, w)
		}
		if (w.Transaction == nil) != (g.TransactionHash == nil) || w.Transaction != nil && *g.TransactionHash != w.Transaction.Hash.HexString() {
			t.Fatalf("ledger %d change %d: transaction %v", seq, i, g.TransactionHash)
		}
	}
	if proctest.Checksum(gk) != proctest.Checksum(wk) {
		t.Fatal("key checksum differs")
	}
	return kinds
}

func TestAccountDataMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		p := proctest.New(t, NewAccountData, map[string]any{"network_passphrase": "Public Global Stellar Network ; September 2015"})
		l, decodes := proctest.Wrap(t, rl.Raw)
		in := []component.Record{raw.LedgerSummary{}}
		recs, err := p.Process(proctest.BG, l, in)
		if err != nil {
			t.Fatal(err)
		}
		if decodes.Load() != 1 {
			t.Errorf("%d decodes, want 1", decodes.Load())
		}
		// An enricher: the input records first, then its own.
		if len(recs) == 0 || recs[0] != in[0] {
			t.Fatalf("ledger %d: input records not forwarded first", rl.Seq)
		}
		kinds := checkAccounts(t, rl.Seq, rl.Raw, recs[1:])
		st := p.(interface{ Stats() map[string]float64 }).Stats()
		if st["accounts_found"] != float64(len(recs)-1) || st["updated"] != float64(kinds["updated"]) || st["last_ledger"] != float64(rl.Seq) {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d account changes %v", rl.Seq, len(recs)-1, kinds)
	}
}

func TestAccountDataSynthetic(t *testing.T) {
	raw := synthLedger(t)
	recs := proctest.Run(t, NewAccountData, map[string]any{"network": "pubnet"}, raw, nil)
	kinds := checkAccounts(t, synthSeq, raw, recs)
	if kinds["created"] != 2 || kinds["removed"] != 1 || kinds["updated"] != 7 {
		t.Fatalf("kinds %v", kinds)
	}
	var rich, gone *AccountRecord
	for i := range recs {
		r := recs[i].(AccountRecord)
		switch {
		case r.AccountID == synthA.Address() && r.HomeDomain != nil:
			rich = &r
		case r.AccountID == synthE.Address():
			gone = &r
		}
	}
	if rich == nil || gone == nil {
		t.Fatal("synthetic ledger: A's last update or E's removal missing")
	}
	js := proctest.JSONOf(t, *rich)
	if *rich.SequenceLedger != 999 || !rich.SequenceTime.Equal(time.Unix(1699999999, 0)) || *rich.Sponsor != synthIssuer.Address() ||
		*rich.InflationDest != synthIssuer.Address() || *rich.HomeDomain != "example.com" || rich.NumSponsored != 1 ||
		rich.NumSponsoring != 2 || rich.MasterWeight != 10 || rich.MediumThreshold != 2 || rich.OperationID == nil {
		t.Fatalf("A: %v", js)
	}
	g := proctest.JSONOf(t, *gone)
	if !gone.Deleted || gone.ChangeType != "removed" || gone.LedgerEntryChange != 2 || gone.Balance != "30000000" ||
		g["sequence_ledger"] != nil || g["sponsor"] != nil || g["home_domain"] != nil {
		t.Fatalf("E: %v", g)
	}
	if !gone.Timestamp.Equal(proctest.Env().Now()) {
		t.Fatalf("timestamp %v is not the processing clock", gone.Timestamp)
	}
}

// A replay gives the same keys; the enricher never writes into its input's backing array.
func TestAccountDataReplayAndInput(t *testing.T) {
	rl := proctest.RealLedgers(t)[1]
	p := proctest.New(t, NewAccountData, map[string]any{"network": "pubnet"})
	in := make([]component.Record, 1, 8)
	in[0] = raw.LedgerSummary{}
	first, err := p.Process(proctest.BG, proctest.Shared(t, rl.Raw), in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Process(proctest.BG, proctest.Shared(t, rl.Raw), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(again) || first[len(first)-1].NaturalKey() != again[len(again)-1].NaturalKey() {
		t.Fatal("replay changed the records")
	}
	if in[:2][1] != nil {
		t.Fatal("the input's spare capacity was written")
	}
	if _, err := component.Construct(NewAccountData, map[string]any{"network": "moonnet"}, proctest.Env()); err == nil {
		t.Fatal("unknown network accepted")
	}
}
