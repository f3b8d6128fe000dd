package bench

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

func TestScratchProfile(t *testing.T) {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	r := newInproc(t, nil)
	ctx := ctxFor(t, 5*time.Minute)
	bareLoop(ctx, r.ds, r.rng, r.reg, "ContractEvent", nil) // warm page cache
	f, _ := os.Create("/tmp/prof-" + os.Getenv("SCRATCH") + ".out")
	pprof.StartCPUProfile(f)
	for i := 0; i < 3; i++ {
		if os.Getenv("SCRATCH") == "bare" {
			s, err := bareLoop(ctx, r.ds, r.rng, r.reg, "ContractEvent", nil)
			t.Logf("bare %.1f/s cpu %s %v", s.Rate(), s.CPUPerUnit(), err)
		} else {
			p, err := r.run(ctx, r.def("x", "ContractEvent", false))
			t.Logf("pipe %.1f/s cpu %s %v", p.Rate(), p.CPUPerUnit(), err)
		}
	}
	pprof.StopCPUProfile()
	f.Close()
}
