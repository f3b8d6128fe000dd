package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/withobsrvr/cdpd/host/component"
)

// RedisConfig is the config of SaveToRedis.
type RedisConfig struct {
	ConnConfig `mapstructure:",squash"`
	KeyPrefix  string `mapstructure:"key_prefix"`
	// TTLHours is every record key's lifetime; 0 keeps keys forever.
	TTLHours int `mapstructure:"ttl_hours"`
}

// SetDefaults implements component.Defaulter (upstream's defaults).
func (c *RedisConfig) SetDefaults() {
	c.setDefaults()
	c.KeyPrefix, c.TTLHours = "stellar:", 24
}

// NewSaveToRedis is the constructor of SaveToRedis: each record as its JSON (encoding/json of
// the record) under <key_prefix><record kind>:<natural key> (SET with ttl_hours). Exactly-once:
// each ledger's keys and the cursor land in one MULTI/EXEC (see the package doc).
func NewSaveToRedis(c *RedisConfig, env component.Env) (component.Consumer, error) {
	if c.TTLHours < 0 {
		return nil, fmt.Errorf("SaveToRedis: ttl_hours must not be negative")
	}
	return newSink("SaveToRedis", &c.ConnConfig, recordShape{prefix: c.KeyPrefix, ttl: time.Duration(c.TTLHours) * time.Hour}, env)
}

type recordShape struct {
	prefix string
	ttl    time.Duration
}

func (sh recordShape) prepare(seq uint32, recs []component.Record, _ time.Time) (*batch, error) {
	keys, vals := make([]string, len(recs)), make([][]byte, len(recs))
	b := &batch{records: len(recs)}
	for i, r := range recs {
		v, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encoding %s record %q as JSON: %w", r.RecordKind(), r.NaturalKey(), err)
		}
		keys[i], vals[i] = sh.prefix+r.RecordKind()+":"+r.NaturalKey(), v
		b.bytes += len(v)
	}
	b.apply = func(ctx context.Context, p redis.Pipeliner) {
		for i := range keys {
			p.Set(ctx, keys[i], vals[i], sh.ttl)
		}
	}
	return b, nil
}

// decodeAll reads every record through its JSON encoding into T (the fields a shape needs, by
// their json names), so a shape takes any record type carrying them; check, when set, refuses
// a record (its error says why). The batch counts the records and their JSON bytes.
func decodeAll[T any](recs []component.Record, check func(component.Record, T) error) ([]T, *batch, error) {
	out := make([]T, 0, len(recs))
	b := &batch{}
	for _, r := range recs {
		raw, err := json.Marshal(r)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding %s record %q as JSON: %w", r.RecordKind(), r.NaturalKey(), err)
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, nil, fmt.Errorf("reading %s record %q: %w", r.RecordKind(), r.NaturalKey(), err)
		}
		if check != nil {
			if err := check(r, v); err != nil {
				return nil, nil, err
			}
		}
		out = append(out, v)
		b.records++
		b.bytes += len(raw)
	}
	return out, b, nil
}

// kind is a check that every record is of kind k (what typ takes, made by what).
func kind[T any](typ, k, by string) func(component.Record, T) error {
	return func(r component.Record, _ T) error {
		if r.RecordKind() != k {
			return fmt.Errorf("%s takes %s records (%s), got %s", typ, k, by, r.RecordKind())
		}
		return nil
	}
}

// LatestLedgerConfig is the config of SaveLatestLedgerToRedis.
type LatestLedgerConfig struct {
	ConnConfig `mapstructure:",squash"`
	KeyPrefix  string `mapstructure:"key_prefix"`
}

// SetDefaults implements component.Defaulter.
func (c *LatestLedgerConfig) SetDefaults() {
	c.setDefaults()
	c.KeyPrefix = "stellar:ledger:"
}

// historyLen is how many ledgers <key_prefix>history keeps (upstream's 1000).
const historyLen = 1000

// NewSaveLatestLedgerToRedis is the constructor of SaveLatestLedgerToRedis: latest_ledger
// records (LatestLedger) into <key_prefix>latest and <key_prefix>history. No TTL (as upstream).
// Exactly-once, with the cursor in the same MULTI/EXEC: latest never moves back on a replay.
func NewSaveLatestLedgerToRedis(c *LatestLedgerConfig, env component.Env) (component.Consumer, error) {
	return newSink("SaveLatestLedgerToRedis", &c.ConnConfig, latestShape{prefix: c.KeyPrefix}, env)
}

type latestShape struct{ prefix string }

func (sh latestShape) prepare(_ uint32, recs []component.Record, now time.Time) (*batch, error) {
	type summary struct {
		Sequence uint32 `json:"sequence"`
		Hash     string `json:"hash"`
	}
	ls, b, err := decodeAll(recs, kind[summary]("SaveLatestLedgerToRedis", "latest_ledger", "the LatestLedger processor"))
	if err != nil {
		return nil, err
	}
	updated := now.UTC().Format(time.RFC3339)
	b.apply = func(ctx context.Context, p redis.Pipeliner) {
		for _, s := range ls {
			p.HSet(ctx, sh.prefix+"latest", "sequence", s.Sequence, "hash", s.Hash, "updated_at", updated)
			p.ZAdd(ctx, sh.prefix+"history", redis.Z{Score: float64(s.Sequence), Member: s.Hash})
			p.ZRemRangeByRank(ctx, sh.prefix+"history", 0, -historyLen-1)
		}
	}
	return b, nil
}

// PaymentsConfig is the config of SavePaymentsToRedis.
type PaymentsConfig struct {
	ConnConfig `mapstructure:",squash"`
	// ConnectionString is a Redis URL (upstream's older spelling of redis_url).
	ConnectionString string `mapstructure:"connection_string"`
	KeyPrefix        string `mapstructure:"key_prefix"`
	TTLHours         int    `mapstructure:"ttl_hours"` // 0 keeps keys forever
}

// SetDefaults implements component.Defaulter.
func (c *PaymentsConfig) SetDefaults() {
	c.setDefaults()
	c.KeyPrefix, c.TTLHours = "stellar:payments:", 24
}

// NewSavePaymentsToRedis is the constructor of SavePaymentsToRedis: app_payments records
// (TransformToAppPayment) as hashes <key_prefix>payment:<source>:<ledger>:<operation id>,
// indexed by <key_prefix>source:<account> and <key_prefix>destination:<account> (sorted sets
// of payment keys by ledger), all expiring after ttl_hours. Exactly-once, with the cursor in
// the same MULTI/EXEC (see the package doc).
func NewSavePaymentsToRedis(c *PaymentsConfig, env component.Env) (component.Consumer, error) {
	if c.ConnectionString != "" {
		if c.URL != "" {
			return nil, fmt.Errorf("SavePaymentsToRedis: give redis_url or connection_string, not both")
		}
		c.URL = c.ConnectionString
	}
	if c.TTLHours < 0 {
		return nil, fmt.Errorf("SavePaymentsToRedis: ttl_hours must not be negative")
	}
	return newSink("SavePaymentsToRedis", &c.ConnConfig, paymentShape{prefix: c.KeyPrefix, ttl: time.Duration(c.TTLHours) * time.Hour}, env)
}

type paymentShape struct {
	prefix string
	ttl    time.Duration
}

func (sh paymentShape) prepare(_ uint32, recs []component.Record, now time.Time) (*batch, error) {
	type payment struct {
		Timestamp   string  `json:"timestamp"`
		Source      string  `json:"source_account_id"`
		Destination string  `json:"destination_account_id"`
		AssetCode   string  `json:"asset_code"`
		Amount      string  `json:"amount"`
		Type        string  `json:"type"`
		Memo        *string `json:"memo"`
		Ledger      uint32  `json:"ledger_sequence"`
		OperationID int64   `json:"operation_id"`
	}
	ps, b, err := decodeAll(recs, kind[payment]("SavePaymentsToRedis", "app_payments", "TransformToAppPayment"))
	if err != nil {
		return nil, err
	}
	stored := now.UTC().Format(time.RFC3339)
	b.apply = func(ctx context.Context, p redis.Pipeliner) {
		for _, x := range ps {
			key := sh.prefix + "payment:" + x.Source + ":" + strconv.FormatUint(uint64(x.Ledger), 10) + ":" + strconv.FormatInt(x.OperationID, 10)
			memo := ""
			if x.Memo != nil {
				memo = *x.Memo
			}
			p.HSet(ctx, key, "timestamp", x.Timestamp, "source_account_id", x.Source,
				"destination_account_id", x.Destination, "asset_code", x.AssetCode, "amount", x.Amount,
				"type", x.Type, "memo", memo, "ledger_sequence", x.Ledger, "stored_at", stored)
			src, dst := sh.prefix+"source:"+x.Source, sh.prefix+"destination:"+x.Destination
			p.ZAdd(ctx, src, redis.Z{Score: float64(x.Ledger), Member: key})
			p.ZAdd(ctx, dst, redis.Z{Score: float64(x.Ledger), Member: key})
			if sh.ttl > 0 {
				p.Expire(ctx, key, sh.ttl)
				p.Expire(ctx, src, sh.ttl)
				p.Expire(ctx, dst, sh.ttl)
			}
		}
	}
	return b, nil
}

// OrderbookConfig is the config of SaveToRedisOrderbook.
type OrderbookConfig struct {
	ConnConfig `mapstructure:",squash"`
	KeyPrefix  string `mapstructure:"key_prefix"`
}

// SetDefaults implements component.Defaulter.
func (c *OrderbookConfig) SetDefaults() {
	c.setDefaults()
	c.KeyPrefix = "orderbook:"
}

// orderbookTTL is the lifetime of every orderbook key (upstream's 30 days).
const orderbookTTL = 30 * 24 * time.Hour

// NewSaveToRedisOrderbook is the constructor of SaveToRedisOrderbook: ticker orderbook records
// (base_asset, quote_asset, bid_count, bid_volume, bid_max, ask_count, ask_volume, ask_min,
// spread, spread_mid, last_modified: upstream's TickerOrderbook) as the hash
// <key_prefix><base>:<quote>:current and the sorted sets :bids, :asks, :spread and :volume
// scored by last_modified (a value is a set member, so a value seen again moves to its latest
// time, as upstream), every key kept 30 days. Exactly-once, with the cursor in the same
// MULTI/EXEC (see the package doc).
func NewSaveToRedisOrderbook(c *OrderbookConfig, env component.Env) (component.Consumer, error) {
	return newSink("SaveToRedisOrderbook", &c.ConnConfig, orderbookShape{prefix: c.KeyPrefix}, env)
}

type orderbookShape struct{ prefix string }

func (sh orderbookShape) prepare(_ uint32, recs []component.Record, _ time.Time) (*batch, error) {
	type book struct {
		Base         string    `json:"base_asset"`
		Quote        string    `json:"quote_asset"`
		BidCount     int       `json:"bid_count"`
		BidVolume    float64   `json:"bid_volume"`
		BidMax       float64   `json:"bid_max"`
		AskCount     int       `json:"ask_count"`
		AskVolume    float64   `json:"ask_volume"`
		AskMin       float64   `json:"ask_min"`
		Spread       float64   `json:"spread"`
		SpreadMid    float64   `json:"spread_mid"`
		LastModified time.Time `json:"last_modified"`
	}
	bs, b, err := decodeAll(recs, func(r component.Record, x book) error {
		if x.Base == "" || x.Quote == "" {
			return fmt.Errorf("SaveToRedisOrderbook takes orderbook records with base_asset and quote_asset; %s record %q has none", r.RecordKind(), r.NaturalKey())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b.apply = func(ctx context.Context, p redis.Pipeliner) {
		for _, x := range bs {
			m := sh.prefix + x.Base + ":" + x.Quote
			at := float64(x.LastModified.Unix())
			p.HSet(ctx, m+":current", "bid_count", x.BidCount, "bid_volume", x.BidVolume, "bid_max", x.BidMax,
				"ask_count", x.AskCount, "ask_volume", x.AskVolume, "ask_min", x.AskMin, "spread", x.Spread,
				"spread_mid", x.SpreadMid, "last_modified", x.LastModified.Format(time.RFC3339))
			p.ZAdd(ctx, m+":bids", redis.Z{Score: at, Member: x.BidMax})
			p.ZAdd(ctx, m+":asks", redis.Z{Score: at, Member: x.AskMin})
			p.ZAdd(ctx, m+":spread", redis.Z{Score: at, Member: x.Spread})
			p.ZAdd(ctx, m+":volume", redis.Z{Score: at, Member: x.BidVolume + x.AskVolume})
			for _, k := range []string{":current", ":bids", ":asks", ":spread", ":volume"} {
				p.Expire(ctx, m+k, orderbookTTL)
			}
		}
	}
	return b, nil
}
