package contract

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// refCreatedInstances lists, per transaction hash and operation, the contract instance entries
// the SDK's transaction reader reports created (GetOperationChanges), and counts the create
// host functions of the envelopes.
func refCreatedInstances(t testing.TB, raw []byte, passphrase string) (created map[string][]string, createOps int) {
	t.Helper()
	_, txs := proctest.RefTxsOn(t, raw, passphrase)
	created = map[string][]string{}
	for _, tx := range txs {
		for i, op := range tx.Envelope.Operations() {
			fn, ok := op.Body.GetInvokeHostFunctionOp()
			if !ok {
				continue
			}
			if fn.HostFunction.Type == xdr.HostFunctionTypeHostFunctionTypeCreateContract || fn.HostFunction.Type == xdr.HostFunctionTypeHostFunctionTypeCreateContractV2 {
				createOps++
			}
			chs, err := tx.GetOperationChanges(uint32(i)) //nolint:gosec // test
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range chs {
				if ch.Type == xdr.LedgerEntryTypeContractData && ch.ChangeType == xdr.LedgerEntryChangeTypeLedgerEntryCreated &&
					ch.Post.Data.ContractData.Key.Type == xdr.ScValTypeScvLedgerKeyContractInstance {
					id, _ := ch.Post.Data.ContractData.Contract.String()
					k := fmt.Sprintf("%s:%d", tx.Hash.HexString(), i)
					created[k] = append(created[k], id)
				}
			}
		}
	}
	return created, createOps
}

func TestContractCreationRealLedgers(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		created, ops := refCreatedInstances(t, rl.Raw, pubnet)
		recs := proctest.Run(t, NewContractCreation, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		n := 0
		for _, ids := range created {
			n += len(ids)
		}
		// Neither ledger creates a contract (0 == 0); TestContractCreationSynthetic has the cases.
		if len(recs) != n+ops || n != 0 || ops != 0 {
			t.Fatalf("ledger %d: %d creations, SDK reports %d created instances and %d create operations", rl.Seq, len(recs), n, ops)
		}
	}
}

func TestContractCreationSynthetic(t *testing.T) {
	raw := synthSoroban(t)
	created, ops := refCreatedInstances(t, raw, testnet)
	p := proctest.New(t, NewContractCreation, map[string]any{"network": "testnet"})
	l, decodes := proctest.Wrap(t, raw)
	recs, err := p.Process(proctest.BG, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if decodes.Load() != 0 {
		t.Fatal("full decode")
	}
	sacID, err := synthUSDC.ContractID(testnet) // the SDK's own derivation of an asset contract's id
	if err != nil {
		t.Fatal(err)
	}
	wasm := hex.EncodeToString(synthWasm[:])
	pre3 := contractIDOf(t, testnet, fromAddressPreimage(accountAddr(synthAlice), synthSalt))
	pre4 := contractIDOf(t, testnet, fromAddressPreimage(accountAddr(synthAlice), synthSalt2))
	pre6 := contractIDOf(t, testnet, fromAddressPreimage(accountAddr(synthBob), synthSalt))
	type row struct{ typ, id, creator, wasm, salt, deployer, exec, asset, args string }
	alice, bob := synthAlice.Address(), synthBob.Address()
	want := []struct {
		tx int
		ok bool
		r  row
	}{
		{1, true, row{"deployed_by_contract", cstr(synthD), bob, wasm, "", "", "wasm", "", "null"}},
		{3, true, row{"create_contract", cstr(pre3), alice, wasm, hex.EncodeToString(synthSalt[:]), alice, "wasm", "", "null"}},
		{4, true, row{"create_contract_v2", cstr(pre4), alice, wasm, hex.EncodeToString(synthSalt2[:]), alice, "wasm", "",
			`[{"address":"` + alice + `"},{"string":"init"}]`}},
		{5, true, row{"create_contract", strkey.MustEncode(strkey.VersionByteContract, sacID[:]), alice, "", "", "", "stellar_asset",
			"USDC:GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H", "null"}},
		{6, false, row{"create_contract", cstr(pre6), bob, wasm, hex.EncodeToString(synthSalt[:]), bob, "wasm", "", "null"}},
	}
	if len(recs) != len(want) || ops != 4 {
		t.Fatalf("%d creations (%d create operations), want %d", len(recs), ops, len(want))
	}
	seen := 0
	for i, r := range recs {
		g, w := r.(ContractCreationRecord), want[i]
		args := string(g.ConstructorArgs)
		if args == "" {
			args = "null"
		}
		got := row{g.CreationType, g.ContractID, g.CreatorAccount, g.WasmID, g.InitialSalt, g.DeployerAddress, g.ExecutableType, g.Asset, args}
		if got != w.r || int(g.TransactionIndex) != w.tx || g.Successful != w.ok || g.NetworkPassphrase != testnet || g.LedgerSequence != 2000 {
			t.Fatalf("creation %d:\n got %+v\nwant %+v", i, got, w.r)
		}
		// Every successful creation is a contract instance the SDK's reader saw created by
		// that operation.
		if g.Successful {
			found := false
			for _, id := range created[fmt.Sprintf("%s:%d", g.TransactionHash, g.OperationIndex)] {
				found = found || id == g.ContractID
			}
			if !found {
				t.Fatalf("creation %d: %s not among the instances the SDK reports created", i, g.ContractID)
			}
			seen++
		}
		if !strings.HasPrefix(g.NaturalKey(), "testnet:2000:"+g.TransactionHash+":") {
			t.Fatalf("key %s", g.NaturalKey())
		}
	}
	n := 0
	for _, ids := range created {
		n += len(ids)
	}
	if seen != n {
		t.Fatalf("%d successful creations, the SDK reports %d created instances", seen, n)
	}
	st := p.(component.StatsReporter).Stats()
	if st["creations_found"] != 5 || st["failed_creates"] != 1 || st["deployed_by_contract"] != 1 {
		t.Errorf("stats %v", st)
	}
}
