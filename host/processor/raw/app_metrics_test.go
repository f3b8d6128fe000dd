package raw

import (
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestTransformToAppMetricsMatchesSDK recomputes every metric from the SDK's classic
// transaction reader on the full decode, and new_accounts also from the SDK's change reader
// (accounts created), and compares them with the view-path processor's row.
func TestTransformToAppMetricsMatchesSDK(t *testing.T) {
	type tcase struct {
		name     string
		raw      []byte
		created  int // accounts the ledger creates (checked against the change reader)
		payments bool
	}
	synth, _ := synthCreateAccount(t)
	cases := []tcase{{"synthetic (58752000 with a create_account)", synth, 1, true}}
	for _, rl := range proctest.RealLedgers(t) {
		cases = append(cases, tcase{"ledger " + proctest.Itoa(int64(rl.Seq)), rl.Raw, 0, true})
	}
	for _, tc := range cases {
		p := proctest.New(t, NewTransformToAppMetrics, map[string]any{"network_passphrase": network.PublicNetworkPassphrase})
		l, decodes := proctest.Wrap(t, tc.raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := decodes.Load(); n != 0 {
			t.Fatalf("%s: %d full decodes, want 0", tc.name, n)
		}
		got := recs[0].(AppNetworkMetrics)
		want := wantMetrics(t, tc.raw, l.CloseTime())
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, want)
		}
		if want.NewAccounts != tc.created || want.CreateAccountOps < tc.created {
			t.Errorf("%s: the change reader shows %d created accounts, want %d", tc.name, want.NewAccounts, tc.created)
		}
		if tc.payments && (want.PaymentOps == 0 || want.ActiveAccounts == 0 || want.PaymentVolume == "0") {
			t.Errorf("%s: fixture expected to carry native payments: %+v", tc.name, want)
		}
		t.Logf("%s: %d txs, %d ops, %d accounts, %d payments (%s stroops XLM), %d new accounts, %d offers",
			tc.name, got.TransactionCount, got.OperationCount, got.ActiveAccounts, got.PaymentOps, got.PaymentVolume,
			got.NewAccounts, got.ManageOfferOps)
	}
}

// wantMetrics computes the metrics of a ledger from the SDK's transaction reader, and
// new_accounts from its change reader.
func wantMetrics(t *testing.T, raw []byte, closedAt time.Time) AppNetworkMetrics {
	lcm, txs := proctest.RefTxs(t, raw)
	hdr := lcm.LedgerHeaderHistoryEntry().Header
	txSet, err := lcm.MustV1().TxSet.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := AppNetworkMetrics{network: "pubnet", LedgerSequence: lcm.LedgerSequence(), ClosedAt: closedAt, Type: "network_metrics",
		Timestamp: strconv.FormatUint(uint64(hdr.ScpValue.CloseTime), 10), ProtocolVersion: uint32(hdr.LedgerVersion),
		BaseFee: uint32(hdr.BaseFee), MaxTxSetSize: uint32(hdr.MaxTxSetSize), TxSetSizeBytes: int64(len(txSet)),
		TransactionCount: len(txs)}
	accounts := map[string]bool{}
	var fees, maxCharged, volume int64
	ok := 0
	for _, tx := range txs {
		charged := int64(tx.Result.Result.FeeCharged)
		fees += charged
		maxCharged = max(maxCharged, charged)
		bid := int64(tx.Envelope.Fee())
		if tx.Envelope.IsFeeBump() {
			bid = tx.Envelope.FeeBumpFee()
		}
		want.MaxFee = max(want.MaxFee, bid)
		accounts[tx.Envelope.SourceAccount().ToAccountId().Address()] = true
		if tx.Result.Successful() {
			ok++
		}
		for _, op := range tx.Envelope.Operations() {
			want.OperationCount++
			if op.SourceAccount != nil {
				accounts[op.SourceAccount.ToAccountId().Address()] = true
			}
			switch op.Body.Type {
			case xdr.OperationTypePayment:
				want.PaymentOps++
				if pay := op.Body.MustPaymentOp(); tx.Result.Successful() && pay.Asset.Type == xdr.AssetTypeAssetTypeNative {
					volume += int64(pay.Amount)
				}
			case xdr.OperationTypeCreateAccount:
				want.CreateAccountOps++
			case xdr.OperationTypeChangeTrust:
				want.ChangeTrustOps++
			case xdr.OperationTypeManageBuyOffer, xdr.OperationTypeManageSellOffer:
				want.ManageOfferOps++
			case xdr.OperationTypeSetOptions:
				want.SetOptionsOps++
			}
		}
	}
	want.NewAccounts = createdAccounts(t, lcm)
	want.ActiveAccounts = len(accounts)
	want.PaymentVolume = strconv.FormatInt(volume, 10)
	want.FeeVolume, want.FeeCharged = strconv.FormatInt(fees, 10), strconv.FormatInt(fees, 10)
	want.TransactionSuccess = float64(ok) / float64(len(txs)) * 100
	want.AverageFeePaid = strconv.FormatInt(fees/int64(len(txs)), 10)
	want.MaxFeeCharged = strconv.FormatInt(maxCharged, 10)
	return want
}

// createdAccounts counts account entries created in the ledger, from the SDK's change reader.
func createdAccounts(t *testing.T, lcm xdr.LedgerCloseMeta) int {
	t.Helper()
	rd, err := ingest.NewLedgerChangeReaderFromLedgerCloseMeta(network.PublicNetworkPassphrase, lcm)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	n := 0
	for {
		ch, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if ch.Type == xdr.LedgerEntryTypeAccount && ch.ChangeType == xdr.LedgerEntryChangeTypeLedgerEntryCreated {
			n++
		}
	}
}

// TestTransformToAppMetricsCloseTime: ledger_closetime is the gap to the previous ledger when
// the processor saw it just before, null otherwise.
func TestTransformToAppMetricsCloseTime(t *testing.T) {
	rls := proctest.RealLedgers(t)
	p := proctest.New(t, NewTransformToAppMetrics, map[string]any{"network": "pubnet"})
	for _, rl := range rls {
		recs, err := p.Process(proctest.BG, proctest.Shared(t, rl.Raw), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ct := recs[0].(AppNetworkMetrics).LedgerClosetime; ct != nil {
			t.Errorf("ledger %d: ledger_closetime %d after a non-adjacent ledger", rl.Seq, *ct)
		}
	}
	pm := p.(*TransformToAppMetrics)
	pm.prevSeq, pm.prevClose = rls[0].Seq-1, proctest.Shared(t, rls[0].Raw).CloseTime().Unix()-6
	recs, err := p.Process(proctest.BG, proctest.Shared(t, rls[0].Raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct := recs[0].(AppNetworkMetrics).LedgerClosetime; ct == nil || *ct != 6 {
		t.Errorf("ledger_closetime %v, want 6", ct)
	}
}
