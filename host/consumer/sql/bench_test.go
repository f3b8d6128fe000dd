package sql

import (
	"context"
	"fmt"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

// BenchmarkPostgres upserts 50 ledgers x 200 records per iteration into a fresh table.
func BenchmarkPostgres(b *testing.B) {
	srv := pgtest.Shared(b)
	consumertest.BenchConsumer(b, func(i int) component.Consumer {
		p, err := component.Construct(NewPostgres, map[string]any{"connection_string": srv.DB(b), "table_name": fmt.Sprintf("bench_%d_%d", b.N, i)},
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
