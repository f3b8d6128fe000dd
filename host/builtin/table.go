package builtin

import (
	c "github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/processor/contract"
	"github.com/withobsrvr/cdpd/host/processor/payment"
	"github.com/withobsrvr/cdpd/host/processor/raw"
	"github.com/withobsrvr/cdpd/host/source"
)

// Table is every built-in component: CDP type name, one-line description, constructor (whose
// config struct gives the keys and defaults), aliases. `cdpd components` and the README's
// component table are generated from it. Keep each section sorted by type name.
func Table() []c.Spec {
	return []c.Spec{
		// Sources: galexie datastores (GCS, S3, a directory), Stellar RPC and captive core.
		c.SourceSpec("BufferedStorageSourceAdapter", "Ledgers from a galexie datastore on GCS, S3 or a local directory (storage_type).", source.NewBufferedStorage),
		c.SourceSpec("CaptiveCoreInboundAdapter", "Ledgers from a captive stellar-core run by the SDK's captive-core backend (needs the stellar-core binary).", source.NewCaptiveCore),
		c.SourceSpec("FSBufferedStorageSourceAdapter", "Ledgers from a galexie datastore in a local directory.", source.NewFS),
		c.SourceSpec("GCSBufferedStorageSourceAdapter", "Ledgers from a galexie datastore in a GCS bucket.", source.NewGCS),
		c.SourceSpec("RPCSourceAdapter", "Ledgers from a Stellar RPC server (getLedgers, whatever rpc_method says).", source.NewRPC),
		c.SourceSpec("S3BufferedStorageSourceAdapter", "Ledgers from a galexie datastore in an S3 bucket (or an S3-compatible store).", source.NewS3),
		c.SourceSpec("SorobanSourceAdapter", "Ledgers from a Stellar RPC server (getLedgers), with upstream's checkpoint keys accepted.", source.NewSoroban),

		// Processors — contract (Soroban).
		c.ProcessorSpec("ContractData", "Contract data ledger entry changes (created, updated, removed, restored).", contract.NewContractData, "ContractDataProcessor"),
		c.ProcessorSpec("ContractEvent", "Soroban contract events as history_contract_events rows, read from the zero-copy view.", contract.NewContractEvent, "ContractEventProcessor", "StellarContractEvent"),
		// Processors — ledger.
		c.ProcessorSpec("LatestLedger", "One summary row per ledger (transactions, operations, fees), read from the zero-copy view.", raw.NewLatestLedger, "LatestLedgerProcessor"),
		// Processors — payments and tokens.
		c.ProcessorSpec("FilterPayments", "Payment operations, filtered by amount, asset and account.", payment.NewFilterPayments),
		c.ProcessorSpec("TokenTransfer", "The SDK's token transfer events (transfers, mints, burns, clawbacks, fees) of every asset.", payment.NewTokenTransfer, "TokenTransferProcessor"),
		c.ProcessorSpec("TransformToAppPayment", "Payments in the flat app form (from, to, amount, asset, memo).", payment.NewTransformToAppPayment),

		// Consumers.
		c.ConsumerSpec("SaveToParquet", "Parquet files named by ledger range; a replay replaces a file, never doubles rows.", consumer.NewSaveToParquet, "SaveToParquetConsumer"),
		c.ConsumerSpec("SaveToPostgreSQL", "Upserts on each record's natural key, with the consumer's cursor in the same transaction.", consumer.NewSaveToPostgreSQL, "SaveToPostgreSQLConsumer"),
		c.ConsumerSpec("StdoutConsumer", "Every record as one JSON line on standard output.", consumer.NewStdoutConsumer, "StdoutSink"),
	}
}
