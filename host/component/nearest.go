package component

import (
	"slices"
	"strings"
)

// Nearest returns up to n of candidates ordered by closeness to name (case-insensitive edit
// distance, then alphabetically): the suggestions of "did you mean" errors and the order of
// known keys next to an unknown one. Candidates further away than half their length plus
// two are left out when n is smaller than len(candidates), so a suggestion is never absurd.
func Nearest(name string, candidates []string, n int) []string {
	type scored struct {
		s string
		d int
	}
	all := make([]scored, 0, len(candidates))
	ln := strings.ToLower(name)
	for _, c := range candidates {
		d := editDistance(ln, strings.ToLower(c))
		// A name one contains the other of ("SaveToParquet" in "SaveToParquetConsumer") is
		// close whatever its length difference.
		if lc := strings.ToLower(c); ln != "" && (strings.Contains(lc, ln) || strings.Contains(ln, lc)) {
			d = min(d, 1+abs(len(lc)-len(ln))/4)
		}
		all = append(all, scored{c, d})
	}
	slices.SortStableFunc(all, func(a, b scored) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.s, b.s)
	})
	filter := n < len(candidates)
	out := make([]string, 0, min(n, len(all)))
	for _, s := range all {
		if len(out) == n {
			break
		}
		if filter && s.d > len(s.s)/2+2 {
			continue
		}
		out = append(out, s.s)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
