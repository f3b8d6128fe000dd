package file

import (
	"context"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
)

// BenchmarkParquet writes 50 ledgers x 200 records (every field type) per iteration.
func BenchmarkParquet(b *testing.B) {
	for _, comp := range []string{"snappy", "zstd"} {
		b.Run(comp, func(b *testing.B) {
			consumertest.BenchConsumer(b, func(int) component.Consumer {
				p, err := component.Construct(NewParquet, map[string]any{"local_path": b.TempDir(), "compression": comp, "partition_by": "none"}, component.Env{})
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				return p
			})
		})
	}
}
