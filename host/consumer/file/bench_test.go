package file

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/test/fixture/gcsemu"
	"github.com/withobsrvr/cdpd/test/fixture/s3emu"
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

// BenchmarkParquetObjectStore writes the same ledgers as SaveToParquet files on the GCS and S3
// emulators (in-process, on 127.0.0.1): the cost of the upload path over the FS one.
func BenchmarkParquetObjectStore(b *testing.B) {
	b.Run("GCS", func(b *testing.B) {
		gcsemu.Start(b, "bkt")
		benchParquetAt(b, map[string]any{"storage_type": "GCS", "bucket_name": "bkt"})
	})
	b.Run("S3", func(b *testing.B) {
		srv := s3emu.Start(b, "bkt")
		benchParquetAt(b, map[string]any{"storage_type": "S3", "bucket_name": "bkt", "endpoint": srv.URL})
	})
}

func benchParquetAt(b *testing.B, where map[string]any) {
	consumertest.BenchConsumer(b, func(i int) component.Consumer {
		cfg := map[string]any{"partition_by": "none", "path_prefix": fmt.Sprintf("run%d-%d", b.N, i)}
		for k, v := range where {
			cfg[k] = v
		}
		p, err := component.Construct(NewParquet, cfg, component.Env{})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		return p
	})
}

// BenchmarkSaveToGCS writes the ledgers as NDJSON objects on the GCS emulator.
func BenchmarkSaveToGCS(b *testing.B) {
	gcsemu.Start(b, "bkt")
	consumertest.BenchConsumer(b, func(i int) component.Consumer {
		c, err := component.Construct(NewSaveToGCS, map[string]any{"bucket_name": "bkt", "object_prefix": fmt.Sprintf("run%d-%d", b.N, i)}, component.Env{})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.(component.Starter).Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		return c
	})
}

// BenchmarkSaveToExcel writes the ledgers to a workbook (10000 rows, rewritten every 1000).
func BenchmarkSaveToExcel(b *testing.B) {
	consumertest.BenchConsumer(b, func(int) component.Consumer {
		c, err := component.Construct(NewSaveToExcel, map[string]any{"file_path": filepath.Join(b.TempDir(), "b.xlsx")}, component.Env{})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.(component.Starter).Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		return c
	})
}
