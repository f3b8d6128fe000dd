// Package file owns the consumers that write files, objects and lines:
//
//   - SaveToParquet: Parquet files named by ledger range on the local filesystem, GCS or S3,
//     replaced (never doubled) by a replay;
//   - SaveToLedgerParquet: LedgerToJSON's ledger documents, one row per ledger, on
//     SaveToParquet's writer;
//   - SaveToGCS: records as JSON lines in GCS objects named by ledger range; a replay skips
//     the ledgers an object holds;
//   - SaveToExcel and SaveLatestLedgerToExcel: an .xlsx workbook (github.com/xuri/excelize/v2)
//     rewritten whole, with its cursor, on each flush;
//   - StdoutConsumer: JSON lines on standard output;
//   - DebugLogger and LogDebug: what reaches them, in the pipeline's log at debug level.
//
// Store is the one object writer of the package: put an object atomically, list by prefix,
// read, delete; on a directory (internal/atomicfile), a GCS bucket (cloud.google.com/go/storage)
// or an S3 bucket (the AWS SDK v2). Every consumer's doc states what a crash can do to its data.
package file
