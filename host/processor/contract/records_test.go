package contract

import (
	"slices"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
)

// Every record kind of the package is a table the sinks can build (supported field types,
// columns named by the JSON tags), under upstream's field names where upstream has them.
func TestRecordSchemas(t *testing.T) {
	for _, tc := range []struct {
		rec  component.Record
		cols []string // some of upstream's names the table must have
	}{
		{ContractEventRecord{}, []string{"transaction_hash", "contract_id", "topics_decoded", "data_decoded"}},
		{RPCEventRecord{}, []string{"type", "ledger", "ledgerClosedAt", "contractId", "id", "operationIndex", "transactionIndex",
			"txHash", "inSuccessfulContractCall", "topic", "value", "topicJson", "valueJson"}},
		{ContractInvocationRecord{}, []string{"timestamp", "ledger_sequence", "transaction_index", "operation_index", "transaction_hash",
			"contract_id", "invoking_account", "function_name", "arguments_raw", "arguments", "arguments_decoded", "successful",
			"diagnostic_events", "contract_calls", "state_changes", "ttl_extensions"}},
		{ContractCreationRecord{}, []string{"timestamp", "ledger_sequence", "transaction_hash", "contract_id", "creator_account",
			"wasm_id", "initial_salt", "successful", "executor_account", "network_passphrase"}},
		{ContractDataRecord{}, []string{"contract_id", "key", "val"}},
		{EventPaymentRecord{}, []string{"id", "payment_id", "token_id", "amount", "from_id", "merchant_id", "royalty_amount",
			"tx_hash", "block_height", "block_timestamp"}},
		{SoroswapNewPairRecord{}, []string{"type", "timestamp", "ledger_sequence", "contract_id", "pair_address", "token_0", "token_1"}},
		{SoroswapSyncRecord{}, []string{"type", "timestamp", "ledger_sequence", "contract_id", "new_reserve_0", "new_reserve_1"}},
		{SoroswapSwapRecord{}, []string{"type", "contract_id", "to", "amount_0_in", "amount_1_in", "amount_0_out", "amount_1_out"}},
		{ExtractedContractInvocationRecord{}, []string{"toid", "ledger", "timestamp", "contract_id", "function_name", "invoking_account",
			"transaction_hash", "funder", "recipient", "amount", "project_id", "memo_text", "email", "schema_name", "successful"}},
		{SoroswapRouterRecord{}, []string{"type", "timestamp", "ledger_sequence", "contract_id", "account", "token_a", "token_b",
			"amount_a", "amount_b", "tx_hash"}},
	} {
		s, err := consumer.SchemaOf(tc.rec)
		if err != nil {
			t.Fatalf("%s: %v", tc.rec.RecordKind(), err)
		}
		var names []string
		for _, c := range s.Columns {
			names = append(names, c.Name)
		}
		for _, want := range tc.cols {
			if !slices.Contains(names, want) {
				t.Errorf("%s: no column %s (columns %v)", tc.rec.RecordKind(), want, names)
			}
		}
	}
}
