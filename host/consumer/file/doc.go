// Package file owns the consumers that write files, objects and lines: SaveToParquet (Parquet
// files named by ledger range, so a replay rewrites instead of doubling) and StdoutConsumer
// (JSON lines on standard output).
package file
