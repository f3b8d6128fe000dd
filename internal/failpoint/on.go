//go:build faultinject

package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Enabled reports whether failpoints are compiled in (the faultinject build tag).
const Enabled = true

var (
	selectOnce sync.Once
	selected   string // the failpoint EnvVar names ("" = none)
	at         int64  // the hit to crash at (1 = the first)

	mu   sync.Mutex
	hits int64
)

// parse reads EnvVar once: "<name>" or "<name>@<n>".
func parse() {
	v := strings.TrimSpace(os.Getenv(EnvVar))
	name, n, found := strings.Cut(v, "@")
	at = 1
	if found {
		if k, err := strconv.ParseInt(n, 10, 64); err == nil && k > 0 {
			at = k
		} else {
			fmt.Fprintf(os.Stderr, "failpoint: %s=%q: want <name> or <name>@<n>, n >= 1; no failpoint armed\n", EnvVar, v)
			return
		}
	}
	selected = name
}

// Inject kills the process with SIGKILL when name is the failpoint EnvVar selects and this is
// the selected hit.
func Inject(name string) {
	selectOnce.Do(parse)
	if selected == "" || name != selected {
		return
	}
	mu.Lock()
	hits++
	n := hits
	mu.Unlock()
	if n != at {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s reached (hit %d): killing the process\n", name, n)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not handled: nothing runs after it
}
