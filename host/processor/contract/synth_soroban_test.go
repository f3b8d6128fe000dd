package contract

import (
	"crypto/sha256"
	"testing"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// The Soroban cases the real ledgers lack (58752000 has 101 successful contract calls and
// nothing else; 53312000 one): failed invocations, cross-contract authorization trees,
// contract data created / updated / removed, TTL extensions, contract creations (v1, v2 with
// constructor arguments, a Stellar asset contract, one deployed by a contract, a failed one)
// and a wasm upload. Testnet, ledger 2000.

var (
	synthC      = xdr.ContractId{0xcc}
	synthD      = xdr.ContractId{0xdd} // deployed by synthA during tx 1
	synthWasm   = xdr.Hash{0x77}
	synthSalt   = xdr.Uint256{0x51}
	synthSalt2  = xdr.Uint256{0x52}
	synthUSDC   = xdr.MustNewCreditAsset("USDC", "GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H")
	synthWasmEx = xdr.ContractExecutable{Type: xdr.ContractExecutableTypeContractExecutableWasm, WasmHash: &synthWasm}
)

func cstr(id xdr.ContractId) string { return strkey.MustEncode(strkey.VersionByteContract, id[:]) }

func ledgerKey(t testing.TB, e xdr.LedgerEntry) xdr.LedgerKey {
	t.Helper()
	k, err := e.LedgerKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fromAddressPreimage is a contract id preimage "deployed by addr with salt".
func fromAddressPreimage(addr xdr.ScAddress, salt xdr.Uint256) xdr.ContractIdPreimage {
	return xdr.ContractIdPreimage{Type: xdr.ContractIdPreimageTypeContractIdPreimageFromAddress,
		FromAddress: &xdr.ContractIdPreimageFromAddress{Address: addr, Salt: salt}}
}

// contractIDOf hashes a preimage for the network as the protocol defines contract ids (the
// test's own restatement; the Stellar asset case is also checked against the SDK's
// Asset.ContractID).
func contractIDOf(t testing.TB, passphrase string, pre xdr.ContractIdPreimage) xdr.ContractId {
	t.Helper()
	b, err := xdr.HashIdPreimage{Type: xdr.EnvelopeTypeEnvelopeTypeContractId, ContractId: &xdr.HashIdPreimageContractId{
		NetworkId: sha256.Sum256([]byte(passphrase)), ContractIdPreimage: pre}}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func accountAddr(a xdr.AccountId) xdr.ScAddress {
	return xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeAccount, AccountId: &a}
}

func authEntry(sourceCreds bool, root xdr.SorobanAuthorizedInvocation) xdr.SorobanAuthorizationEntry {
	c := xdr.SorobanCredentials{Type: xdr.SorobanCredentialsTypeSorobanCredentialsSourceAccount}
	if !sourceCreds {
		c = xdr.SorobanCredentials{Type: xdr.SorobanCredentialsTypeSorobanCredentialsAddress,
			Address: &xdr.SorobanAddressCredentials{Address: accountAddr(synthBob), Signature: xdr.ScVal{Type: xdr.ScValTypeScvVoid}}}
	}
	return xdr.SorobanAuthorizationEntry{Credentials: c, RootInvocation: root}
}

func authFn(id xdr.ContractId, fn string, subs ...xdr.SorobanAuthorizedInvocation) xdr.SorobanAuthorizedInvocation {
	return xdr.SorobanAuthorizedInvocation{Function: xdr.SorobanAuthorizedFunction{
		Type:       xdr.SorobanAuthorizedFunctionTypeSorobanAuthorizedFunctionTypeContractFn,
		ContractFn: invokeContract(id, fn, scU64(1)).InvokeContract}, SubInvocations: subs}
}

// synthSoroban builds the ledger:
//
//	tx 1 (Alice; op source Bob): A.swap(Bob, 42) — authorized A.swap -> B.transfer -> C.approve
//	     (address credentials) and A.swap -> B.mint (source account); creates A/k1 (with a
//	     new TTL), updates A/k2 (TTL 100 -> 200), removes B/k3, creates the instance of D
//	     (deployed by A) and emits one event.
//	tx 2 (Bob): A.swap() failed (trapped).
//	tx 3 (Alice): create_contract from Alice + salt (wasm) — creates its instance.
//	tx 4 (Alice): create_contract_v2 from Alice + salt 2 with constructor args; create the
//	     USDC asset contract in the same ledger (tx 5); both succeed.
//	tx 6 (Bob): create_contract failed.
//	tx 7 (Alice): upload_wasm.
//	tx 8 (Bob): a classic bump-sequence operation.
func synthSoroban(t testing.TB) []byte {
	t.Helper()
	k1 := contractDataEntry(synthA, scSym("k1"), scU64(1), 2000)
	k2old, k2new := contractDataEntry(synthA, scSym("k2"), scU64(2), 1500), contractDataEntry(synthA, scSym("k2"), scU64(3), 2000)
	k3 := contractDataEntry(synthB, scSym("k3"), scU64(4), 1200)
	instD := instanceEntry(synthD, synthWasmEx)
	code := xdr.LedgerKey{Type: xdr.LedgerEntryTypeContractCode, ContractCode: &xdr.LedgerKeyContractCode{Hash: synthWasm}}
	var ch1 []xdr.LedgerEntryChange
	ch1 = append(ch1, created(k1)...)
	ch1 = append(ch1, created(ttlEntry(t, k1, 150))...)
	ch1 = append(ch1, updated(k2old, k2new)...)
	ch1 = append(ch1, updated(ttlEntry(t, k2old, 100), ttlEntry(t, k2old, 200))...)
	ch1 = append(ch1, updated(ttlEntry(t, k3, 300), ttlEntry(t, k3, 250))...) // lowered: not an extension
	k3key := ledgerKey(t, k3)
	ch1 = append(ch1, xdr.LedgerEntryChange{Type: xdr.LedgerEntryChangeTypeLedgerEntryState, State: &k3},
		xdr.LedgerEntryChange{Type: xdr.LedgerEntryChangeTypeLedgerEntryRemoved, Removed: &k3key})
	ch1 = append(ch1, created(instD)...)
	swap := invokeContract(synthA, "swap", scAccount(synthBob), scI128(42))
	tx1 := synthSpec{source: synthAlice, soroban: true,
		readOnly: []xdr.LedgerKey{code}, readWr: []xdr.LedgerKey{ledgerKey(t, k1), ledgerKey(t, k2old), k3key},
		ops: []xdr.Operation{invokeOp(swap, &synthBob,
			authEntry(false, authFn(synthA, "swap", authFn(synthB, "transfer", authFn(synthC, "approve")))),
			authEntry(true, authFn(synthA, "swap", authFn(synthB, "mint"))))},
		results: []xdr.OperationResultTr{invokeResult(true)},
		opMeta:  []xdr.OperationMetaV2{{Changes: ch1, Events: []xdr.ContractEvent{event(synthA, scI128(42), scSym("swap"))}}},
	}
	tx2 := synthSpec{source: synthBob, soroban: true, failed: true,
		ops: []xdr.Operation{invokeOp(invokeContract(synthA, "swap"), nil)}, results: []xdr.OperationResultTr{invokeResult(false)}}

	pre3 := fromAddressPreimage(accountAddr(synthAlice), synthSalt)
	create3 := xdr.HostFunction{Type: xdr.HostFunctionTypeHostFunctionTypeCreateContract,
		CreateContract: &xdr.CreateContractArgs{ContractIdPreimage: pre3, Executable: synthWasmEx}}
	tx3 := synthSpec{source: synthAlice, soroban: true, ops: []xdr.Operation{invokeOp(create3, nil)},
		results: []xdr.OperationResultTr{invokeResult(true)},
		opMeta:  []xdr.OperationMetaV2{{Changes: created(instanceEntry(contractIDOf(t, testnet, pre3), synthWasmEx))}}}

	pre4 := fromAddressPreimage(accountAddr(synthAlice), synthSalt2)
	create4 := xdr.HostFunction{Type: xdr.HostFunctionTypeHostFunctionTypeCreateContractV2,
		CreateContractV2: &xdr.CreateContractArgsV2{ContractIdPreimage: pre4, Executable: synthWasmEx,
			ConstructorArgs: []xdr.ScVal{scAccount(synthAlice), scStr("init")}}}
	tx4 := synthSpec{source: synthAlice, soroban: true, ops: []xdr.Operation{invokeOp(create4, nil)},
		results: []xdr.OperationResultTr{invokeResult(true)},
		opMeta:  []xdr.OperationMetaV2{{Changes: created(instanceEntry(contractIDOf(t, testnet, pre4), synthWasmEx))}}}

	pre5 := xdr.ContractIdPreimage{Type: xdr.ContractIdPreimageTypeContractIdPreimageFromAsset, FromAsset: &synthUSDC}
	sac := xdr.ContractExecutable{Type: xdr.ContractExecutableTypeContractExecutableStellarAsset}
	create5 := xdr.HostFunction{Type: xdr.HostFunctionTypeHostFunctionTypeCreateContract,
		CreateContract: &xdr.CreateContractArgs{ContractIdPreimage: pre5, Executable: sac}}
	tx5 := synthSpec{source: synthAlice, soroban: true, ops: []xdr.Operation{invokeOp(create5, nil)},
		results: []xdr.OperationResultTr{invokeResult(true)},
		opMeta:  []xdr.OperationMetaV2{{Changes: created(instanceEntry(contractIDOf(t, testnet, pre5), sac))}}}

	create6 := xdr.HostFunction{Type: xdr.HostFunctionTypeHostFunctionTypeCreateContract,
		CreateContract: &xdr.CreateContractArgs{ContractIdPreimage: fromAddressPreimage(accountAddr(synthBob), synthSalt), Executable: synthWasmEx}}
	tx6 := synthSpec{source: synthBob, soroban: true, failed: true, ops: []xdr.Operation{invokeOp(create6, nil)},
		results: []xdr.OperationResultTr{invokeResult(false)}}

	wasm := []byte("\x00asm")
	upload := xdr.HostFunction{Type: xdr.HostFunctionTypeHostFunctionTypeUploadContractWasm, Wasm: &wasm}
	tx7 := synthSpec{source: synthAlice, soroban: true, ops: []xdr.Operation{invokeOp(upload, nil)},
		results: []xdr.OperationResultTr{invokeResult(true)}}

	bump, bumpRes := bumpOp()
	tx8 := synthSpec{source: synthBob, ops: []xdr.Operation{bump}, results: []xdr.OperationResultTr{bumpRes}}
	return synthLedgerTxs(t, 2000, testnet, tx1, tx2, tx3, tx4, tx5, tx6, tx7, tx8)
}
