package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/test/testproc"
)

// BenchmarkHotAdd measures the time from a pipeline file renamed into the config directory to
// the pipeline registered in the control plane, over 20 hot-adds (binaries built with -race,
// as the tests use them). Run: go test -run '^$' -bench HotAdd -benchtime 1x ./test/e2e
func BenchmarkHotAdd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cp := startControlPlane(b, 0)
		conf, state := b.TempDir(), b.TempDir()
		startDaemon(b, conf, state, cp.addr)
		var took []time.Duration
		for n := 0; n < 20; n++ {
			name := fmt.Sprintf("hot%02d", n)
			start := time.Now()
			testproc.WriteFile(b, filepath.Join(conf, name+".yaml"), latestYAML(name))
			testproc.Eventually(b, 20*time.Second, name+" registered", func() (bool, string) {
				_, ok := cp.list(b)["cdp-"+name]
				return ok, ""
			})
			took = append(took, time.Since(start))
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "median-ms")
		b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
		fmt.Printf("hot-add to registered: median %s, max %s over %d adds\n", took[len(took)/2], took[len(took)-1], len(took))
	}
}
