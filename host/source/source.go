// Package source owns the pipeline sources: the components that yield ledgers as raw
// LedgerCloseMeta XDR, registered under the CDP type names.
//
//   - BufferedStorageSourceAdapter (storage_type GCS|S3|FS, GCS when absent),
//     GCSBufferedStorageSourceAdapter, S3BufferedStorageSourceAdapter and
//     FSBufferedStorageSourceAdapter read a galexie datastore with go-stellar-sdk's buffered
//     storage stream (ledgerbackend.NewBufferedStorageStream(...).RawLedgers).
//   - RPCSourceAdapter and SorobanSourceAdapter read a Stellar RPC server (getHealth,
//     getLedgers) with the SDK's RPC stream (ledgerbackend.NewRPCStream).
//   - CaptiveCoreInboundAdapter runs captive stellar-core with the SDK's captive-core stream
//     (ledgerbackend.NewCaptiveCoreStream, built on ledgerbackend.NewCaptive).
//
// Each yielded ledger is copied (the SDK's bytes are borrowed until the next iteration) into a
// pooled ledger.Ledger (ledger.CopyPooled: the host releases it when its consumers are done)
// that counts full decodes on the pipeline's Env.Decodes; nothing is decoded here.
// The stream's ingest_ledger_fetch_duration_seconds summary goes to the pipeline incarnation's own registry
// (Env.Metrics) under the namespace cdp_pipeline_source.
//
// Config keys (CDP spelling; the loader reports keys a source does not know as warnings).
// Storage sources:
//
//	bucket_name          GCS/S3: bucket, optionally followed by a path prefix ("bucket/prefix")
//	region, endpoint     S3: region (required unless endpoint is set; then us-east-1) and a custom
//	                     endpoint URL for S3-compatible stores and emulators; force_path_style is
//	                     accepted (the SDK always uses path-style requests)
//	path (or base_path)  FS: the datastore directory
//	path_prefix          a path inside the bucket (GCS, S3) or directory (FS) where the datastore
//	                     starts: bucket_name "b" with path_prefix "landing/pubnet" reads
//	                     b/landing/pubnet (upstream's storage adapters ignored this key)
//	url_template         BufferedStorageSourceAdapter: the datastore's location as a URL,
//	                     file://, gs:// or s3://; the scheme sets the storage type and the path
//	                     up to the first segment with a placeholder ("{0}") is the root, so
//	                     upstream's "file://path/to/ledgers/{0}.xdr.gz" reads the directory
//	                     path/to/ledgers (everything after file:// is the path; file:///x is
//	                     absolute). The file-name part is not used: a galexie datastore names its
//	                     files as its manifest says, and Start refuses a root without a manifest,
//	                     so a template describing a per-ledger .xdr.gz layout (which upstream
//	                     could not read either: its adapter required bucket_name) fails with that
//	                     reason instead of being misread. Not with bucket_name/path/base_path.
//	network              pubnet (or mainnet, public), testnet, futurenet; network_passphrase
//	                     overrides it. Checked against the datastore manifest's passphrase.
//	start_ledger         >= 2, or the range by time below; the host passes the resume point to Run
//	end_ledger           0 or absent: follow the tip forever; else Run returns nil after it
//	start_time_ago, end_time_ago
//	                     the range's ends as a duration before now: "30d", "6mo", "1y", "2w",
//	                     "1h30m", seconds, or "now" (end only: the datastore's newest ledger).
//	start_time, end_time the same as an RFC 3339 time or a date (upstream's absolute keys).
//	                     Resolved in Start on the datastore itself: the first ledger closed at
//	                     or after the start time, the last one closed at or before the end time
//	                     (the SDK has no datastore helper for it: a search over ledger
//	                     sequences, galloping back from the newest, reading close times from
//	                     galexie's object metadata or else the files; see storage_times.go for
//	                     the edges). Combinations as
//	                     upstream: ledgers; times; start_ledger with an end time; a start with
//	                     continuous_mode. The resolved range is pinned in the pipeline's state
//	                     directory, so a restart resumes from its checkpoint instead of from a
//	                     start that moved with the clock (upstream re-resolved on every start);
//	                     changing these keys resolves again. Without a state directory (no
//	                     checkpoints) every start resolves anew. Range() is 0 until Start.
//	continuous_mode      true: follow the tip (the default whenever no end is given); an error
//	                     with an end. Upstream's "rolling window" (start_ledger + end_time_ago +
//	                     continuous_mode: emit each ledger once it is older than end_time_ago)
//	                     is not provided: that combination is an error.
//	buffer_size          files buffered ahead (default 20, or 10 when files hold >= 64 ledgers)
//	num_workers          parallel downloads (default 10, or 2 when files hold >= 64 ledgers)
//	retry_limit          retries of a failing download (default 5)
//	retry_wait           seconds (number, as upstream CDP files give it) or a duration ("500ms")
//	ledgers_per_file,    taken from the datastore's .config.json manifest; if given they must
//	files_per_partition  agree with it. Without a manifest: as given, else 64 and 10 (upstream
//	                     CDP defaults)
//
// RPC sources (RPCSourceAdapter, SorobanSourceAdapter; upstream CDP's keys):
//
//	rpc_url              the server URL (rpc_endpoint, cdpd's first name for it, is the same key;
//	                     giving both with different values is an error)
//	start_ledger         required, >= 2 (upstream's SorobanSourceAdapter started at the server's
//	                     latest ledger without one; here that is an error: a start that moves with
//	                     every restart would skip ledgers)
//	end_ledger           0 or absent: follow the tip. Inclusive, as for every cdpd source
//	                     (upstream's SorobanSourceAdapter stopped before it)
//	batch_size           ledgers per getLedgers request (buffer_size is the same key; default 10,
//	                     upstream's default was 100, about 100 MB of base64 per pubnet request)
//	auth_header          sent verbatim as the Authorization header ("Api-Key ...", "Bearer ...");
//	                     "" sends none. api_key is sent as "Authorization: Api-Key <key>"; giving
//	                     both is an error. Neither, nor the URL's password or query, ever appears
//	                     in an error, a log or a stat: Run's errors and the tip poll's are redacted
//	                     (the SDK quotes the URL it failed on; a server may echo the header).
//	rpc_method           getLedgers (default), getEvents or getLatestLedger; anything else is an
//	                     error. Whatever the method, a cdpd source emits whole ledgers read with
//	                     getLedgers: with getEvents the pipeline still receives every ledger and
//	                     the GetEventsRPC processor extracts the events from it; with
//	                     getLatestLedger the LatestLedgerRPC processor summarises every ledger.
//	                     Upstream differences: upstream's RPCSourceAdapter did nothing without
//	                     rpc_method and, with getEvents, sent the same request (same
//	                     start_ledger, no cursor) at every poll, so each poll re-emitted the same
//	                     events; its SorobanSourceAdapter only logged a getEvents answer. Here
//	                     every ledger of the range is emitted once.
//	filters, pagination, xdrFormat
//	                     getEvents request keys: accepted (shape and values checked) and not
//	                     applied by the source, whose ledgers are whole. GetEventsRPC reads
//	                     filters and xdrFormat from its OWN config: an upstream file that puts
//	                     them on the source only gets every event until they are moved to the
//	                     processor. pagination has no meaning on the ledger path (getLedgers
//	                     pages by batch_size). Run logs the key names (never values) it ignores.
//	poll_interval, poll_interval_seconds
//	                     seconds or a duration, validated, not applied: the SDK's RPC backend
//	                     fetches back to back while behind and re-polls every 2 s at the tip, a
//	                     constant with no option (ledgerbackend.RPCLedgerBackendOptions has
//	                     none), so cdpd follows at 2 s whatever the file says
//	checkpoint_dir, checkpoint_interval
//	                     SorobanSourceAdapter: accepted, not used. The host checkpoints every
//	                     pipeline after its consumers durably accepted each ledger and resumes
//	                     from there; upstream's source-side checkpoint also recorded ledgers
//	                     whose decoding or processing had failed (it logged the error and went
//	                     on), so a restart skipped them
//	network, network_passphrase
//	                     optional; validated
//	format               base64 or xdr (the source reads base64 XDR)
//
// CaptiveCoreInboundAdapter (upstream's keys, then cdpd's):
//
//	network              pubnet (mainnet, public), testnet, futurenet; network_passphrase
//	                     overrides it (then captive_core_toml_path is required)
//	history_archive_urls required, http(s) URLs of the network's history archives
//	core_binary_path     required, the stellar-core binary. Looked for in Start, run in Run: a
//	                     missing or non-executable binary fails Start with an error naming the
//	                     path (and no other config value)
//	start_ledger         optional. Without it the source starts at the archives' latest
//	                     checkpoint ledger (root HAS currentLedger), as upstream always did
//	                     (upstream ignored start_ledger), pinned in the state directory like a
//	                     range given by time; with it, captive core catches up from there
//	end_ledger           optional (with start_ledger): a bounded replay
//	captive_core_toml_path
//	                     a stellar-core config for captive core; default: the SDK's embedded
//	                     config for the network (ledgerbackend.PubnetDefaultConfig, ...)
//	storage_path         captive core's bucket directory (default: the pipeline's state
//	                     directory)
//
// stellar-core cannot be installed where cdpd's tests run: they cover the config path, the
// start from the archives (a local fake archive) and the binary errors, not a live core.
//
// Following the tip: in an unbounded range the SDK asks for the next missing file again every
// retry_wait. The defaults are 1 s for FS, so a file an exporter adds to a local datastore is
// emitted within about a second, and 5 s for GCS and S3 (the upstream CDP default, one GET of a
// missing object per worker per 5 s; the SDK's own default is 30 s). The SDK's RPC backend polls
// every 2 s (fixed). Exporters must make each file appear whole (object stores do; on a
// filesystem write a temporary name and rename, as test/fixture does): the SDK reads a file as
// soon as it exists.
//
// Stats (StatsReporter): processed_ledgers, last_ledger, bytes (raw XDR), last_processed_time
// (unix), lag_seconds, and, once the backend has been polled (storage and RPC sources; captive
// core has no tip to poll), tip_ledger and ledgers_behind_tip (counted to end_ledger when the run
// is bounded: what is left to do). Prometheus gauges on the pipeline registry:
// cdp_pipeline_source_lag_seconds (now minus the close time of the last ledger emitted),
// cdp_pipeline_source_ledgers_behind_tip and cdp_pipeline_source_tip_ledger (the newest ledger
// the datastore holds, by datastore.FindLatestLedgerSequence, or the RPC server's
// getLatestLedger; polled every 5 s while Run runs), cdp_pipeline_source_last_ledger.
//
// Constructors only decode and validate. Storage sources open their datastore, read its
// manifest and resolve a range given by time in Start; the captive-core source looks for its
// binary (and, without start_ledger, asks the archives for its start) in Start. Run calls
// Start itself if the host did not.
package source
