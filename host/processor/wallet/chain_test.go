package wallet

import (
	"fmt"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/processor/effects"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestWalletChain runs upstream's wallet-backend chain with the configs upstream's
// wallet_backend_unified*.yaml give each processor (decoded strictly: every key is known):
// the last processor hands on every kind, each processor's records in order, the ledger
// decoded once for all four, and the sinks' schemas take every record.
func TestWalletChain(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	pass := "Public Global Stellar Network ; September 2015"
	chain := []component.Processor{
		proctest.New(t, NewTransactionXDRExtractor, map[string]any{"network_passphrase": pass}),
		proctest.New(t, NewWalletBackend, map[string]any{"extract_contract_events": false, "track_participants": true, "network_passphrase": pass}),
		proctest.New(t, NewParticipantExtractor, map[string]any{"network_passphrase": pass}),
		proctest.New(t, effects.NewStellarEffects, map[string]any{"network_passphrase": pass}),
	}
	l, decodes := proctest.Wrap(t, rl.Raw)
	var recs []component.Record
	var sizes []int
	for _, p := range chain {
		var err error
		if recs, err = p.Process(proctest.BG, l, recs); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(recs))
	}
	if decodes.Load() != 1 {
		t.Errorf("%d decodes for the chain, want 1", decodes.Load())
	}
	var order []string
	count := map[string]int{}
	for _, r := range recs {
		k := r.RecordKind()
		if len(order) == 0 || order[len(order)-1] != k {
			order = append(order, k)
		}
		count[k]++
	}
	if fmt.Sprint(order) != "[transaction_xdr state_changes transaction_participants history_effects]" {
		t.Errorf("kinds in order %v", order)
	}
	// Each kind as many as the processor gives alone (their own tests check those).
	_, txs := proctest.RefTxs(t, rl.Raw)
	effs := proctest.Run(t, effects.NewStellarEffects, pubnet, rl.Raw, nil)
	changes := proctest.Run(t, NewWalletBackend, map[string]any{"network": "pubnet", "extract_contract_events": false}, rl.Raw, nil)
	if count["transaction_xdr"] != len(txs) || count["transaction_participants"] != len(txs) || count["history_effects"] != len(effs) ||
		count["state_changes"] != len(changes) || sizes[0] != len(txs) || sizes[1] != len(txs)+len(changes) || len(effs) == 0 {
		t.Errorf("counts %v, sizes %v; %d transactions, %d effects, %d state changes", count, sizes, len(txs), len(effs), len(changes))
	}
	t.Logf("chain on ledger %d: %v", rl.Seq, count)
	// The sinks take every kind: a schema per record type, values for every record.
	for _, r := range recs {
		s, err := consumer.SchemaOf(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Values(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The pipeline's network is the default.
	if _, err := component.Construct(NewTransactionXDRExtractor, map[string]any{}, component.Env{Network: "testnet"}); err != nil {
		t.Errorf("TransactionXDRExtractor with the pipeline's network: %v", err)
	}
}
