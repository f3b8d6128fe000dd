//go:build !faultinject

package failpoint

// Inject does nothing without the faultinject build tag.
func Inject(string) {}

// Enabled reports whether failpoints are compiled in (the faultinject build tag).
const Enabled = false
