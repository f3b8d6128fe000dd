// Package raw owns the processors of whole ledgers and transactions:
//
//   - from the zero-copy view (no full decode): LatestLedger (alias LatestLedgerRPC; one
//     summary row per ledger), LedgerReader (one row per transaction with its XDR parts),
//     TransformToAppMetrics (network metrics per ledger) and Passthrough (its input records,
//     then the ledger itself);
//   - from the shared decoded ledger through the SDK's readers: LedgerChanges (every ledger
//     entry change), LedgerToJSON (the ledger as one JSON document) and BronzeExtractors
//     (upstream's bronze tables ledgers_row_v2, transactions_row_v2, ttl_snapshot_v1).
//
// Every one of them reads the ledger it is given and, except Passthrough, ignores its input
// records. Their tests check each against an independent count on the SDK's real pubnet
// ledgers (proctest) and, where those lack a case, on a synthetic variant (synth_test.go).
package raw
