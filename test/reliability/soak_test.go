package reliability

// The long variants of parts 3, 4 and 5 of issue 9, run by `make soak` (CDPD_SOAK=1,
// `go test -race -run Soak ./test/...`).

import (
	"testing"
	"time"
)

func needSoak(t *testing.T) {
	t.Helper()
	if !soak() {
		t.Skip("soak test: set CDPD_SOAK=1 (make soak)")
	}
}

// TestSoakCrashConsistency: 7 runs × 3 SIGKILLs = 21 kills at seeded random moments.
func TestSoakCrashConsistency(t *testing.T) {
	needSoak(t)
	runCrash(t, crashPlan{runs: 7, killsPerRun: 3})
}

// TestSoakHostileConfigFiles: 2,000 hostile entries (another seed) into a live directory.
func TestSoakHostileConfigFiles(t *testing.T) {
	needSoak(t)
	runHostileConfigFiles(t, 2000, 7)
}

// TestSoakHostileControlPlane: the hostile requests and a 10 s registration flood.
func TestSoakHostileControlPlane(t *testing.T) {
	needSoak(t)
	runHostileControlPlane(t, 10*time.Second)
}

// TestSoakChurn: 1,000 add / edit / remove cycles across 50 files while 10 pipelines run.
func TestSoakChurn(t *testing.T) {
	needSoak(t)
	runChurn(t, 1000, 2)
}
