// Package kv owns cdpd's key-value consumers: the Redis sinks under upstream CDP's type names
// and keys, registered by host/builtin's table.
//
//   - SaveToRedis: every record as JSON under <key_prefix><record kind>:<natural key>, with
//     ttl_hours (upstream's stored-JSON shape).
//   - SaveLatestLedgerToRedis: LatestLedger summaries as <key_prefix>latest (hash of sequence,
//     hash, updated_at) and <key_prefix>history (sorted set of hashes by sequence, last 1000).
//   - SavePaymentsToRedis: TransformToAppPayment records as hashes with source and destination
//     indexes (sorted sets by ledger), all with ttl_hours.
//   - SaveToRedisOrderbook: ticker orderbook records as <key_prefix><base>:<quote>:current and
//     its bids/asks/spread/volume series, kept 30 days.
//
// Connection keys (every type): redis_url (redis:// or rediss://), or redis_address,
// redis_password, redis_db and use_tls; cdpd adds cursor_key (default cdpd_cursors) and
// max_retry_wait (default 30s). SavePaymentsToRedis also takes connection_string (a URL, as
// upstream). Neither the URL nor the password is ever logged or quoted in an error; go-redis's
// own log lines (dial failures that the retry loop reports anyway) go to slog at debug level.
//
// Data safety, the same for every type: exactly-once. A ledger's writes and the consumer's
// cursor (field "<pipeline>/<consumer>" of the hash cursor_key, in the same database) are sent
// as one pipelined MULTI/EXEC transaction, so Redis holds both or neither; the pipeline resumes
// after the cursor (component.Positioned); a replayed ledger at or below the cursor (another
// consumer of the pipeline lagging) is skipped, and every write is idempotent besides (SET,
// HSET, ZADD, EXPIRE on keys derived from the record), so a write whose outcome was unknown
// (connection lost during EXEC) is checked against the cursor and resent safely. What Redis
// acknowledged is as durable as Redis's own persistence makes it; a Redis crash loses data and
// cursor together, and the pipeline replays from there. While Redis is unreachable Consume
// retries with capped exponential backoff (internal/backoff, up to max_retry_wait) and blocks;
// Health reports it meanwhile. An error Redis answers inside the transaction (a key of another
// type under the prefix: WRONGTYPE) cannot be rolled back by Redis: the cursor is put back and
// the pipeline fails with the error.
//
// Upstream differences, kept in the interface and fixed in the behaviour: upstream pings Redis
// in its constructor (cdpd connects in Start), logs the Redis URL with its password, drops
// nothing but has no cursor (a restart doubles or loses its window), keys a payment by source
// account and ledger only (two payments of one account in a ledger overwrote each other; cdpd
// appends the operation id), and with ttl_hours: 0 expired its keys at once (cdpd: no expiry).
// Upstream's SaveToRedis also dispatches on an operation_type field to shapes of processors
// cdpd does not have (asset hashes, price series, offers); cdpd stores each record whole.
package kv
