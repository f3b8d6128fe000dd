// Package shard owns how a sharded fleet of cdpd replicas splits the pipelines of one config
// directory: each pipeline name belongs to exactly one of N shards, chosen by rendezvous
// (highest-random-weight) hashing. Every replica computes the same answer from the name alone,
// so the replicas need no coordination, and going from N to N+1 shards moves only the pipelines
// whose new winner is shard N (about 1/(N+1) of them); every other pipeline keeps its shard.
// Going from N+1 back to N moves exactly those back.
//
// The weight of (name, shard j) is a 64-bit mix of FNV-1a(name) and j (splitmix64's
// finalizer). The function is part of the fleet's contract: replicas of different versions
// must agree, so it never changes (TestAssignmentIsStable pins known answers).
package shard

import (
	"fmt"
	"hash/fnv"
)

// Of returns the shard (0 .. count-1) that owns name among count shards. A count below 2
// means no sharding: shard 0 owns everything.
func Of(name string, count int) int {
	if count < 2 {
		return 0
	}
	h := nameHash(name)
	best, bestW := 0, uint64(0)
	for j := 0; j < count; j++ {
		if w := weight(h, j); j == 0 || w > bestW {
			best, bestW = j, w
		}
	}
	return best
}

// Spec is one replica's place in a fleet: shard Index of Count. The zero value (and any Count
// below 2) is an unsharded daemon that owns every pipeline.
type Spec struct {
	Index int
	Count int
}

// Sharded reports whether the fleet has more than one shard.
func (s Spec) Sharded() bool { return s.Count > 1 }

// Owns reports whether this replica runs pipeline name.
func (s Spec) Owns(name string) bool { return Of(name, s.Count) == s.Index }

// Check reports an index outside 0 .. Count-1, or a Count below 1.
func (s Spec) Check() error {
	n := max(s.Count, 1)
	if s.Count < 0 {
		return fmt.Errorf("shard count must be at least 1, got %d", s.Count)
	}
	if s.Index < 0 || s.Index >= n {
		return fmt.Errorf("shard index %d is out of range for %d shard(s) (0 .. %d)", s.Index, n, n-1)
	}
	return nil
}

// String is "K/N" ("0/1" unsharded).
func (s Spec) String() string { return fmt.Sprintf("%d/%d", s.Index, max(s.Count, 1)) }

func nameHash(name string) uint64 {
	f := fnv.New64a()
	_, _ = f.Write([]byte(name))
	return f.Sum64()
}

// weight is the rendezvous weight of a name (by its hash) on shard j.
func weight(h uint64, j int) uint64 {
	return mix(h ^ mix(uint64(j)+0x9e3779b97f4a7c15))
}

// mix is splitmix64's finalizer: every input bit affects every output bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
