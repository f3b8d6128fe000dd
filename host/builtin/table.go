package builtin

import (
	c "github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/consumer/kv"
	"github.com/withobsrvr/cdpd/host/consumer/stream"
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
		// Sources: galexie datastores (GCS, S3, a directory) and Stellar RPC.
		c.SourceSpec("BufferedStorageSourceAdapter", "Ledgers from a galexie datastore on GCS, S3 or a local directory (storage_type).", source.NewBufferedStorage),
		c.SourceSpec("FSBufferedStorageSourceAdapter", "Ledgers from a galexie datastore in a local directory.", source.NewFS),
		c.SourceSpec("GCSBufferedStorageSourceAdapter", "Ledgers from a galexie datastore in a GCS bucket.", source.NewGCS),
		c.SourceSpec("RPCSourceAdapter", "Ledgers from a Stellar RPC server (getLedgers).", source.NewRPC),
		c.SourceSpec("S3BufferedStorageSourceAdapter", "Ledgers from a galexie datastore in an S3 bucket (or an S3-compatible store).", source.NewS3),

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
		c.ConsumerSpec("NotificationDispatcher", "Webhook notifications for records that match rules, delivered as the control plane's alerts are.", stream.NewNotificationDispatcher),
		c.ConsumerSpec("PublishToGooglePubSub", "Every record as a Google Pub/Sub message, ordered by ledger, with its natural key as an attribute.", stream.NewPublishToGooglePubSub),
		c.ConsumerSpec("PublishToGooglePubSubV2", "Payment records as Google Pub/Sub messages in upstream's V2 envelope, ordered by ledger.", stream.NewPublishToGooglePubSubV2),
		c.ConsumerSpec("SaveLatestLedgerToRedis", "The latest ledger and the last 1000 ledger hashes in Redis, with the cursor in the same transaction.", kv.NewSaveLatestLedgerToRedis),
		c.ConsumerSpec("SavePaymentsToRedis", "App payments as Redis hashes indexed by source and destination account, with the cursor in the same transaction.", kv.NewSavePaymentsToRedis),
		c.ConsumerSpec("SaveToParquet", "Parquet files named by ledger range; a replay replaces a file, never doubles rows.", consumer.NewSaveToParquet, "SaveToParquetConsumer"),
		c.ConsumerSpec("SaveToPostgreSQL", "Upserts on each record's natural key, with the consumer's cursor in the same transaction.", consumer.NewSaveToPostgreSQL, "SaveToPostgreSQLConsumer"),
		c.ConsumerSpec("SaveToRedis", "Every record as JSON under its natural key in Redis (with a TTL), with the cursor in the same transaction.", kv.NewSaveToRedis),
		c.ConsumerSpec("SaveToRedisOrderbook", "Orderbook snapshots and their bid, ask, spread and volume series in Redis, with the cursor in the same transaction.", kv.NewSaveToRedisOrderbook),
		c.ConsumerSpec("SaveToWebSocket", "A WebSocket server streaming records to registered clients; slow clients are dropped.", stream.NewSaveToWebSocket),
		c.ConsumerSpec("SaveToZeroMQ", "Every record as a message on a ZeroMQ PUB socket (pure Go).", stream.NewSaveToZeroMQ),
		c.ConsumerSpec("StdoutConsumer", "Every record as one JSON line on standard output.", consumer.NewStdoutConsumer, "StdoutSink"),
	}
}
