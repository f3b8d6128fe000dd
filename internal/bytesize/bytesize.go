// Package bytesize is the one flag type of byte sizes of cdpd and flowctl ("256MiB", "4MB",
// "1048576"), parsed and printed by github.com/dustin/go-humanize.
package bytesize

import (
	"fmt"

	"github.com/dustin/go-humanize"
)

// Size is a number of bytes; *Size is a flag.Value.
type Size int64

// Set parses a size: a number of bytes with an optional unit, decimal (kB, MB, GB) or binary
// (KiB, MiB, GiB).
func (s *Size) Set(v string) error {
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return fmt.Errorf("want a size such as 256MiB or 1GiB, got %q", v)
	}
	if n > 1<<62 {
		return fmt.Errorf("size %s is too large", v)
	}
	*s = Size(n)
	return nil
}

// String prints the size with a binary unit ("256 MiB").
func (s Size) String() string { return humanize.IBytes(uint64(s)) }
