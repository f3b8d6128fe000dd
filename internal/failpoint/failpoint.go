// Package failpoint names the commit boundaries of cdpd where the reliability suite crashes
// the process (test/reliability, TestCrashAtFailpoints), as Kafka Connect and etcd test theirs.
// Code calls Inject(name) at each boundary. Without the build tag faultinject Inject is an
// empty function the compiler removes; with it (the suite's cdpd), the process kills itself
// with SIGKILL at the point the environment variable EnvVar selects: "<name>" at the first time
// the point is reached, "<name>@<n>" at the n-th (counted in the whole process). Just before,
// it writes "failpoint <name> reached (hit <n>): killing the process" to stderr, so that the
// suite can tell the crash it asked for from any other.
//
// A crash at a boundary is a crash at its worst moment: before a commit, the work is lost and
// must be redone; after it, the work is done but nothing else (checkpoint, in-memory state)
// knows yet. Either way a restart must leave every ledger exactly once in every sink.
package failpoint

// EnvVar selects the failpoint of a faultinject build: "<name>" or "<name>@<n>".
const EnvVar = "CDPD_FAILPOINT"

// The failpoints, by commit boundary.
const (
	// PostgresBeforeCommit: SaveToPostgreSQL has written a batch's rows and cursor in its
	// transaction and is about to commit it.
	PostgresBeforeCommit = "postgres-before-commit"
	// PostgresAfterCommit: the transaction committed; the consumer has not recorded it yet.
	PostgresAfterCommit = "postgres-after-commit"
	// DuckDBBeforeCommit: the DuckDB writer has appended a batch's rows and raised its cursor
	// in its transaction and is about to commit it; DuckDBAfterCommit: committed, not recorded.
	DuckDBBeforeCommit = "duckdb-before-commit"
	DuckDBAfterCommit  = "duckdb-after-commit"
	// CursorBeforeUpdate and CursorAfterUpdate surround the fenced cursor update, the first
	// statement of SaveToPostgreSQL's transaction.
	CursorBeforeUpdate = "cursor-before-update"
	CursorAfterUpdate  = "cursor-after-update"
	// CheckpointBeforeRename: a pipeline's new checkpoint is written and fsynced to its
	// temporary file, not renamed over checkpoint.json yet; CheckpointAfterRename: renamed.
	CheckpointBeforeRename = "checkpoint-before-rename"
	CheckpointAfterRename  = "checkpoint-after-rename"
	// ParquetBeforeRename: a Parquet file is written to its temporary file, not renamed into
	// place yet; ParquetAfterRename: renamed, the older files it replaces not removed yet.
	ParquetBeforeRename = "parquet-before-rename"
	ParquetAfterRename  = "parquet-after-rename"
	// HeartbeatBeforeSend and HeartbeatAfterSend surround a pipeline's heartbeat RPC to the
	// control plane.
	HeartbeatBeforeSend = "heartbeat-before-send"
	HeartbeatAfterSend  = "heartbeat-after-send"
)

// All lists every failpoint, in the order above.
var All = []string{
	PostgresBeforeCommit, PostgresAfterCommit,
	DuckDBBeforeCommit, DuckDBAfterCommit,
	CursorBeforeUpdate, CursorAfterUpdate,
	CheckpointBeforeRename, CheckpointAfterRename,
	ParquetBeforeRename, ParquetAfterRename,
	HeartbeatBeforeSend, HeartbeatAfterSend,
}
