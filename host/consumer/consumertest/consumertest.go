// Package consumertest owns the test kit shared by the consumer packages (host/consumer and
// its domain packages): AllTypes, a record with every supported field type; MakeRecords and
// ConsumeRange, which feed a consumer ledger by ledger; Ledger, a minimal real ledger of a
// given sequence; and SameRecords, which compares what a sink stored with what it was given.
package consumertest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// AllTypes is a record with every supported field type, plain and nullable.
type AllTypes struct {
	Network   string           `json:"network"`
	Ledger    uint32           `json:"ledger_sequence"`
	Index     int              `json:"index"`
	Small     int32            `json:"small"`
	Big       int64            `json:"big"`
	Huge      uint64           `json:"huge"`
	Ratio     float64          `json:"ratio"`
	OK        bool             `json:"ok"`
	ClosedAt  time.Time        `json:"closed_at"`
	Topics    []string         `json:"topics"`
	Data      json.RawMessage  `json:"data"`
	OptString *string          `json:"opt_string"`
	OptBool   *bool            `json:"opt_bool"`
	OptInt    *int             `json:"opt_int"`
	OptInt32  *int32           `json:"opt_int32"`
	OptInt64  *int64           `json:"opt_int64"`
	OptUint32 *uint32          `json:"opt_uint32"`
	OptUint64 *uint64          `json:"opt_uint64"`
	OptFloat  *float64         `json:"opt_float"`
	OptTime   *time.Time       `json:"opt_time"`
	OptJSON   *json.RawMessage `json:"opt_json"`
	Ignored   string           `json:"-"`
	//lint:ignore U1000 never read on purpose: a sink must skip unexported fields
	unexported int
}

// RecordKind implements component.Record.
func (r AllTypes) RecordKind() string { return "all_types" }

// NaturalKey implements component.Record.
func (r AllTypes) NaturalKey() string {
	return fmt.Sprintf("%s-%d-%d", r.Network, r.Ledger, r.Index)
}

// Ptr returns a pointer to a copy of v.
func Ptr[T any](v T) *T { return &v }

// MakeRecords returns n records for ledger seq; odd indexes have every nullable field nil.
func MakeRecords(seq uint32, n int) []component.Record {
	var out []component.Record
	for i := 0; i < n; i++ {
		r := AllTypes{
			Network:  "testnet",
			Ledger:   seq,
			Index:    i,
			Small:    int32(-i),
			Big:      int64(seq)*1000 + int64(i),
			Huge:     uint64(1)<<63 + uint64(i),
			Ratio:    float64(i) / 3,
			OK:       i%3 == 0,
			ClosedAt: time.Date(2025, 7, 1, 0, 0, int(seq%60), i*1000, time.UTC),
			Topics:   []string{"transfer", fmt.Sprintf("t%d", i)},
			Data:     json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
			Ignored:  "never stored",
		}
		if i%2 == 0 {
			r.OptString = Ptr(fmt.Sprintf("s%d", i))
			r.OptBool = Ptr(true)
			r.OptInt = Ptr(-i)
			r.OptInt32 = Ptr(int32(i))
			r.OptInt64 = Ptr(int64(-i) * 1e12)
			r.OptUint32 = Ptr(uint32(i))
			r.OptUint64 = Ptr(uint64(i) << 40)
			r.OptFloat = Ptr(1.5 * float64(i))
			r.OptTime = Ptr(time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC))
			r.OptJSON = Ptr(json.RawMessage(`["a",1]`))
		}
		switch i % 4 {
		case 1:
			r.Topics = nil
		case 3:
			r.Topics = []string{}
		}
		out = append(out, r)
	}
	return out
}

// Ledger builds a minimal LedgerCloseMeta with sequence seq (no transactions), closed at
// 2025-07-01T00:00:00Z + 5*seq seconds.
func Ledger(t testing.TB, seq uint32) *ledger.Ledger {
	t.Helper()
	lcm := xdr.LedgerCloseMeta{V: 0, V0: &xdr.LedgerCloseMetaV0{
		LedgerHeader: xdr.LedgerHeaderHistoryEntry{Header: xdr.LedgerHeader{
			LedgerSeq: xdr.Uint32(seq),
			ScpValue:  xdr.StellarValue{CloseTime: xdr.TimePoint(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).Unix() + int64(seq)*5)},
		}},
	}}
	raw, err := lcm.MarshalBinary()
	if err != nil {
		t.Fatalf("marshalling test ledger %d: %v", seq, err)
	}
	l, err := ledger.New(raw, nil)
	if err != nil {
		t.Fatalf("wrapping test ledger %d: %v", seq, err)
	}
	if l.Sequence() != seq {
		t.Fatalf("test ledger sequence = %d, want %d", l.Sequence(), seq)
	}
	return l
}

// ConsumeRange feeds ledgers from..to to c, perLedger records each (every fifth ledger has
// none), and returns the records it gave.
func ConsumeRange(t *testing.T, c component.Consumer, from, to uint32, perLedger int) []component.Record {
	t.Helper()
	var all []component.Record
	for seq := from; seq <= to; seq++ {
		recs := MakeRecords(seq, perLedger)
		if seq%5 == 0 {
			recs = nil // some ledgers have no records
		}
		if err := c.Consume(context.Background(), Ledger(t, seq), recs); err != nil {
			t.Fatalf("consuming ledger %d: %v", seq, err)
		}
		all = append(all, recs...)
	}
	return all
}

// SameRecords compares records as sets keyed by natural key and fails on duplicates.
func SameRecords(t *testing.T, got []AllTypes, want []component.Record) {
	t.Helper()
	byKey := map[string]AllTypes{}
	for _, g := range got {
		k := g.NaturalKey()
		if _, dup := byKey[k]; dup {
			t.Errorf("duplicate row %s", k)
		}
		byKey[k] = g
	}
	if len(got) != len(want) {
		t.Errorf("got %d rows, want %d", len(got), len(want))
	}
	for _, w := range want {
		wr := w.(AllTypes)
		wr.Ignored = ""
		g, ok := byKey[wr.NaturalKey()]
		if !ok {
			t.Errorf("missing row %s", wr.NaturalKey())
			continue
		}
		if !reflect.DeepEqual(g, wr) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(wr)
			t.Errorf("row %s:\n got %s\nwant %s", wr.NaturalKey(), gj, wj)
		}
	}
}

// BenchConsumer measures a consumer: per iteration, newC(i) makes a fresh one, which consumes
// 50 ledgers of 200 records and is closed; it reports records/s.
func BenchConsumer(b *testing.B, newC func(i int) component.Consumer) {
	const ledgers, per = 50, 200
	ls := make([]*ledger.Ledger, ledgers)
	rs := make([][]component.Record, ledgers)
	for i := range ls {
		ls[i] = Ledger(b, uint32(i+1))
		rs[i] = MakeRecords(uint32(i+1), per)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := newC(i)
		for j := range ls {
			if err := c.Consume(ctx, ls[j], rs[j]); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*ledgers*per)/b.Elapsed().Seconds(), "records/s")
}
