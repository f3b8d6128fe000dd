package builtin

import "github.com/withobsrvr/cdpd/host/component"

// upstreamTypes are the component type names upstream CDP (withObsrvr/cdp-pipeline-workflow,
// main.go's constructor switches) knows: 9 sources, 52 processors, 44 consumers. A config
// naming one that cdpd does not provide gets an error saying so; `cdpd components --upstream`
// shows which cdpd provides. Names upstream files use that upstream itself cannot load
// (CreateAccountTransformer, PaymentProcessor) are not listed here: where
// their meaning is clear the table registers them as aliases.
var upstreamTypes = map[component.Kind][]string{
	component.KindSource: {
		"BronzeSourceAdapter", "BufferedStorageSourceAdapter", "CaptiveCoreInboundAdapter", "DuckLakeSourceAdapter",
		"FSBufferedStorageSourceAdapter", "GCSBufferedStorageSourceAdapter", "RPCSourceAdapter", "S3BufferedStorageSourceAdapter",
		"SorobanSourceAdapter",
	},
	component.KindProcessor: {
		"AccountData", "AccountDataFilter", "AccountEffect", "AccountTransaction",
		"AccountYearAnalytics", "AssetEnrichment", "BlankProcessor", "BronzeExtractors",
		"ContractCreation", "ContractData", "ContractEvent", "ContractFilter",
		"ContractInvocation", "ContractInvocationExtractor", "ContractInvocationV2", "ContractInvocationV3",
		"ContractLedgerReader", "CreateAccount", "EventPaymentExtractor", "FilterEventsProcessor",
		"FilterPayments", "FilteredContractInvocation", "GetEventsRPC", "Kale",
		"LatestLedger", "LatestLedgerRPC", "LedgerChanges", "LedgerReader",
		"LedgerToJSON", "MarketMetricsProcessor", "ParticipantExtractor", "Passthrough",
		"ProcessAccountDataFull", "SilverLedgerReader", "Soroswap", "SoroswapRouter",
		"StdoutSink", "StellarContractEvent", "StellarEffects", "TransactionXDRExtractor",
		"TransformToAppAccount", "TransformToAppMetrics", "TransformToAppPayment", "TransformToAppTrade",
		"TransformToAppTrustline", "TransformToAssetStats", "TransformToMarketAnalytics", "TransformToMarketCapProcessor",
		"TransformToTickerAsset", "TransformToTickerOrderbook", "TransformToTokenPrice", "WalletBackend",
	},
	component.KindConsumer: {
		"AnthropicClaude", "BronzeToDuckDB", "BufferedPostgreSQL", "DebugLogger",
		"LogDebug", "NotificationDispatcher", "PublishToGooglePubSub", "PublishToGooglePubSubV2",
		"SaveAccountDataToDuckDB", "SaveAccountDataToPostgreSQL", "SaveAssetEnrichment", "SaveAssetToPostgreSQL",
		"SaveContractDataToPostgreSQL", "SaveContractEventsToPostgreSQL", "SaveContractInvocationsToPostgreSQL", "SaveContractToDuckDB",
		"SaveEventPaymentToPostgreSQL", "SaveExtractedContractInvocationsToPostgreSQL", "SaveLatestLedgerToExcel", "SaveLatestLedgerToRedis",
		"SavePaymentToPostgreSQL", "SavePaymentsToRedis", "SaveSoroswapPairsToDuckDB", "SaveSoroswapRouterToDuckDB",
		"SaveSoroswapToPostgreSQL", "SaveToClickHouse", "SaveToDuckDB", "SaveToDuckLake",
		"SaveToDuckLakeEnhanced", "SaveToExcel", "SaveToGCS", "SaveToLedgerParquet",
		"SaveToMarketAnalytics", "SaveToMongoDB", "SaveToParquet", "SaveToPostgreSQL",
		"SaveToRedis", "SaveToRedisOrderbook", "SaveToTimescaleDB", "SaveToWebSocket",
		"SaveToZeroMQ", "SilverIngester", "StdoutConsumer", "WalletBackendPostgreSQL",
	},
}
