package consumer

import (
	"context"
	"fmt"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

// benchLedgers prepares n ledgers of perLedger records each.
func benchLedgers(b *testing.B, n, perLedger int) ([]*ledger.Ledger, [][]component.Record) {
	ls := make([]*ledger.Ledger, n)
	rs := make([][]component.Record, n)
	for i := range ls {
		ls[i] = testLedger(b, uint32(i+1))
		rs[i] = makeRecords(uint32(i+1), perLedger)
	}
	return ls, rs
}

func benchConsumer(b *testing.B, newC func(i int) component.Consumer) {
	const ledgers, per = 50, 200
	ls, rs := benchLedgers(b, ledgers, per)
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

// BenchmarkPostgres upserts 50 ledgers x 200 records per iteration into a fresh table.
func BenchmarkPostgres(b *testing.B) {
	srv := pgtest.Shared(b)
	benchConsumer(b, func(i int) component.Consumer {
		p, err := component.Construct(NewPostgres, map[string]any{"connection_string": srv.DSN(), "table_name": fmt.Sprintf("bench_%d_%d", b.N, i)},
			component.Env{Pipeline: "bench", Name: fmt.Sprintf("bench_%d_%d", b.N, i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		return p
	})
}
