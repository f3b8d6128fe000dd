package kv

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/payment"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/host/processor/raw"
)

// appPayment carries the fields of TransformToAppPayment's records (test inputs).
type appPayment struct {
	Source      string  `json:"source_account_id"`
	Destination string  `json:"destination_account_id"`
	AssetCode   string  `json:"asset_code"`
	Amount      string  `json:"amount"`
	Type        string  `json:"type"`
	Memo        *string `json:"memo"`
	Ledger      uint32  `json:"ledger_sequence"`
	OperationID int64   `json:"operation_id"`
}

func (appPayment) RecordKind() string   { return "app_payments" }
func (p appPayment) NaturalKey() string { return fmt.Sprintf("testnet:%d:%d", p.Ledger, p.OperationID) }

// SaveLatestLedgerToRedis on the LatestLedger records of both real pubnet ledgers: latest is
// the last one consumed, history holds both hashes by sequence.
func TestSaveLatestLedgerToRedisRealLedgers(t *testing.T) {
	srv := sharedRedis(t)
	c := client(t, srv)
	s := startSink(t, NewSaveLatestLedgerToRedis, map[string]any{"redis_address": srv.Addr(), "key_prefix": "t6:"}, env("t6"))
	rls := proctest.RealLedgers(t)
	// 53312000 before 58752000: ledger order.
	var hashes []string
	for _, rl := range []proctest.RealLedger{rls[1], rls[0]} {
		l := proctest.Shared(t, rl.Raw)
		out := proctest.Run(t, raw.NewLatestLedger, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		if len(out) != 1 {
			t.Fatalf("LatestLedger gave %d records", len(out))
		}
		hashes = append(hashes, out[0].(raw.LedgerSummary).Hash)
		if err := s.Consume(bg, l, out); err != nil {
			t.Fatal(err)
		}
	}
	latest := c.HGetAll(bg, "t6:latest").Val()
	if latest["sequence"] != "58752000" || latest["hash"] != hashes[1] || latest["updated_at"] != "2023-11-14T22:13:20Z" {
		t.Fatalf("latest = %v, want 58752000 with hash %s", latest, hashes[1])
	}
	hist := c.ZRangeWithScores(bg, "t6:history", 0, -1).Val()
	if len(hist) != 2 || hist[0].Member != hashes[0] || hist[0].Score != 53312000 || hist[1].Member != hashes[1] {
		t.Fatalf("history = %v", hist)
	}
	if ttl := c.TTL(bg, "t6:latest").Val(); ttl != -1 {
		t.Fatalf("latest has a TTL (%v); upstream sets none", ttl)
	}
	// Other record kinds are refused with the reason.
	if err := s.Consume(bg, testLedger(t, 58752001), recs(58752001, 1, "x")); err == nil {
		t.Fatal("test_rows records accepted")
	}
}

// The history keeps the last 1000 ledgers.
func TestLatestLedgerHistoryBounded(t *testing.T) {
	srv := sharedRedis(t)
	c := client(t, srv)
	s := startSink(t, NewSaveLatestLedgerToRedis, map[string]any{"redis_address": srv.Addr(), "key_prefix": "t7:"}, env("t7"))
	for seq := uint32(1); seq <= historyLen+5; seq++ {
		r := summary{Sequence: seq, Hash: fmt.Sprintf("h%d", seq)}
		if err := s.Consume(bg, testLedger(t, seq), []component.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.ZCard(bg, "t7:history").Val(); n != historyLen {
		t.Fatalf("history holds %d, want %d", n, historyLen)
	}
	if first := c.ZRange(bg, "t7:history", 0, 0).Val(); len(first) != 1 || first[0] != "h6" {
		t.Fatalf("oldest kept %v, want h6", first)
	}
}

type summary struct {
	Sequence uint32 `json:"sequence"`
	Hash     string `json:"hash"`
}

func (summary) RecordKind() string   { return "latest_ledger" }
func (s summary) NaturalKey() string { return "testnet:" + strconv.Itoa(int(s.Sequence)) }

// SavePaymentsToRedis on the app payments of a real pubnet ledger: one hash per payment (even
// two of one account in the ledger), in both indexes, every key with the TTL.
func TestSavePaymentsToRedisRealLedger(t *testing.T) {
	srv := sharedRedis(t)
	c := client(t, srv)
	s := startSink(t, NewSavePaymentsToRedis, map[string]any{"connection_string": srv.URL(0), "key_prefix": "t8:", "ttl_hours": 2}, env("t8"))
	rl := proctest.RealLedgers(t)[0]
	apps := proctest.Run(t, payment.NewTransformToAppPayment, map[string]any{"network": "pubnet"}, rl.Raw, nil)
	if len(apps) < 2 {
		t.Fatalf("%d app payments in ledger %d", len(apps), rl.Seq)
	}
	if err := s.Consume(bg, proctest.Shared(t, rl.Raw), apps); err != nil {
		t.Fatal(err)
	}
	keys := c.Keys(bg, "t8:payment:*").Val()
	if len(keys) != len(apps) {
		t.Fatalf("%d payment keys for %d payments", len(keys), len(apps))
	}
	perSource := map[string]int{}
	for _, r := range apps {
		a := r.(payment.AppPayment)
		perSource[a.SourceAccountID]++
		key := fmt.Sprintf("t8:payment:%s:%d:%d", a.SourceAccountID, a.LedgerSequence, a.OperationID)
		h := c.HGetAll(bg, key).Val()
		if h["amount"] != a.Amount || h["destination_account_id"] != a.DestinationAccountID || h["asset_code"] != a.AssetCode ||
			h["ledger_sequence"] != strconv.Itoa(int(a.LedgerSequence)) || h["timestamp"] != a.Timestamp {
			t.Fatalf("%s = %v, from %+v", key, h, a)
		}
		for _, idx := range []string{"t8:source:" + a.SourceAccountID, "t8:destination:" + a.DestinationAccountID} {
			if sc, err := c.ZScore(bg, idx, key).Result(); err != nil || sc != float64(rl.Seq) {
				t.Fatalf("%s: score of %s = %v, %v", idx, key, sc, err)
			}
			if ttl := c.TTL(bg, idx).Val(); ttl <= time.Hour || ttl > 2*time.Hour {
				t.Fatalf("%s TTL %v, want 2h", idx, ttl)
			}
		}
		if ttl := c.TTL(bg, key).Val(); ttl <= time.Hour || ttl > 2*time.Hour {
			t.Fatalf("%s TTL %v, want 2h", key, ttl)
		}
	}
	var sum int64
	for src := range perSource {
		sum += c.ZCard(bg, "t8:source:"+src).Val()
	}
	if sum != int64(len(apps)) {
		t.Fatalf("source indexes hold %d payments, want %d", sum, len(apps))
	}
	t.Logf("%d payments of %d source accounts in ledger %d", len(apps), len(perSource), rl.Seq)
}

type book struct {
	Base, Quote  string
	BidMax       float64
	AskMin       float64
	LastModified time.Time
}

func (book) RecordKind() string   { return "ticker_orderbook" }
func (b book) NaturalKey() string { return "testnet:1:" + b.Base + "/" + b.Quote }
func (b book) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"base_asset":%q,"quote_asset":%q,"bid_count":3,"bid_volume":10.5,"bid_max":%v,"ask_count":2,"ask_volume":4,"ask_min":%v,"spread":0.25,"spread_mid":1.125,"last_modified":%q}`,
		b.Base, b.Quote, b.BidMax, b.AskMin, b.LastModified.Format(time.RFC3339))), nil
}

// SaveToRedisOrderbook: the current hash and the four series, every key kept 30 days.
func TestSaveToRedisOrderbook(t *testing.T) {
	srv := sharedRedis(t)
	c := client(t, srv)
	s := startSink(t, NewSaveToRedisOrderbook, map[string]any{"redis_address": srv.Addr(), "key_prefix": "t9:"}, env("t9"))
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	for i, seq := range []uint32{5, 6} {
		b := book{Base: "XLM", Quote: "USDC:GA5Z", BidMax: 1 + float64(i), AskMin: 1.25 + float64(i), LastModified: at.Add(time.Duration(i) * time.Minute)}
		if err := s.Consume(bg, testLedger(t, seq), []component.Record{b}); err != nil {
			t.Fatal(err)
		}
	}
	cur := c.HGetAll(bg, "t9:XLM:USDC:GA5Z:current").Val()
	if cur["bid_max"] != "2" || cur["ask_min"] != "2.25" || cur["bid_count"] != "3" || cur["last_modified"] != "2025-07-01T12:01:00Z" {
		t.Fatalf("current = %v", cur)
	}
	bids := c.ZRangeWithScores(bg, "t9:XLM:USDC:GA5Z:bids", 0, -1).Val()
	if len(bids) != 2 || bids[1].Member != "2" || bids[1].Score != float64(at.Add(time.Minute).Unix()) {
		t.Fatalf("bids = %v", bids)
	}
	if v := c.ZRange(bg, "t9:XLM:USDC:GA5Z:volume", 0, -1).Val(); len(v) != 1 || v[0] != "14.5" {
		t.Fatalf("volume = %v (the same value twice is one member)", v)
	}
	for _, k := range []string{"current", "bids", "asks", "spread", "volume"} {
		if ttl := c.TTL(bg, "t9:XLM:USDC:GA5Z:"+k).Val(); ttl < 29*24*time.Hour || ttl > 30*24*time.Hour {
			t.Fatalf("%s TTL %v, want 30 days", k, ttl)
		}
	}
	if err := s.Consume(bg, testLedger(t, 7), recs(7, 1, "x")); err == nil {
		t.Fatal("a record without base_asset accepted")
	}
}
