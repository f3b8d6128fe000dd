package shard

import (
	"fmt"
	"math"
	"testing"
)

// names are pipeline names as operators write them, and many generated ones.
func names(n int) []string {
	out := []string{"contract-events", "ContractEvents", "latest-ledger", "token_transfers", "payments-usdc", "a", ""}
	for i := 0; len(out) < n; i++ {
		out = append(out, fmt.Sprintf("pipeline-%d", i), fmt.Sprintf("backfill_%04d_contract_events", i))
	}
	return out[:n]
}

func TestGrowingMovesOnlyToTheNewShard(t *testing.T) {
	all := names(20000)
	for n := 1; n <= 12; n++ {
		moved := 0
		for _, name := range all {
			before, after := Of(name, n), Of(name, n+1)
			if before == after {
				continue
			}
			moved++
			if after != n {
				t.Fatalf("%d -> %d shards: %q moved from shard %d to %d, not to the new shard %d", n, n+1, name, before, after, n)
			}
		}
		// About 1/(n+1) of the pipelines move: the new shard's fair share, no more.
		want := float64(len(all)) / float64(n+1)
		if math.Abs(float64(moved)-want) > 0.05*want {
			t.Errorf("%d -> %d shards moved %d of %d pipelines, want about %.0f", n, n+1, moved, len(all), want)
		}
	}
}

func TestShrinkingMovesOnlyFromTheRemovedShard(t *testing.T) {
	for _, name := range names(5000) {
		for n := 2; n <= 8; n++ {
			before, after := Of(name, n), Of(name, n-1)
			if before != after && before != n-1 {
				t.Fatalf("%d -> %d shards: %q moved from shard %d, which stays", n, n-1, name, before)
			}
		}
	}
}

func TestEvenSpread(t *testing.T) {
	all := names(30000)
	for n := 2; n <= 16; n++ {
		counts := make([]int, n)
		for _, name := range all {
			counts[Of(name, n)]++
		}
		want := float64(len(all)) / float64(n)
		chi2 := 0.0
		for j, c := range counts {
			d := float64(c) - want
			chi2 += d * d / want
			if math.Abs(d) > 0.06*want {
				t.Errorf("%d shards: shard %d holds %d pipelines, want %.0f ± 6%%", n, j, c, want)
			}
		}
		// 99.9th percentile of chi-squared with n-1 degrees of freedom is below 3(n-1)+12 for
		// these n: a skewed hash fails here long before the per-shard bound.
		if limit := 3*float64(n-1) + 12; chi2 > limit {
			t.Errorf("%d shards: chi-squared %.1f over %.1f: %v", n, chi2, limit, counts)
		}
	}
}

// The assignment is the fleet's contract: replicas of different cdpd versions must agree, so
// these answers never change.
func TestAssignmentIsStable(t *testing.T) {
	for _, c := range []struct {
		name  string
		count int
		want  int
	}{
		{"contract-events", 3, 1},
		{"latest-ledger", 3, 0},
		{"token_transfers", 4, 0},
		{"pipeline-7", 16, 15},
	} {
		if got := Of(c.name, c.count); got != c.want {
			t.Errorf("Of(%q, %d) = %d, want %d: the assignment changed, so a mixed-version fleet would run pipelines twice or not at all", c.name, c.count, got, c.want)
		}
	}
}

func TestSpec(t *testing.T) {
	if (Spec{}).Sharded() || !(Spec{}).Owns("anything") || (Spec{}).Check() != nil || (Spec{}).String() != "0/1" {
		t.Error("the zero Spec is not an unsharded daemon owning everything")
	}
	s := Spec{Index: 1, Count: 3}
	if !s.Sharded() || s.String() != "1/3" || s.Check() != nil {
		t.Errorf("%v: Sharded %v, Check %v", s, s.Sharded(), s.Check())
	}
	owners := 0
	for i := 0; i < 3; i++ {
		if (Spec{Index: i, Count: 3}).Owns("contract-events") {
			owners++
		}
	}
	if owners != 1 {
		t.Errorf("contract-events has %d owners among 3 shards, want 1", owners)
	}
	for _, bad := range []Spec{{Index: 3, Count: 3}, {Index: -1, Count: 2}, {Index: 1, Count: 1}, {Count: -2}} {
		if bad.Check() == nil {
			t.Errorf("%+v is accepted", bad)
		}
	}
}
