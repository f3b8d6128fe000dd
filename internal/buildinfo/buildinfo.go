// Package buildinfo owns the version string the project's binaries report (cdpd and flowctl):
// the value `make build` stamps with -ldflags -X from `git describe --tags --always --dirty`,
// and, for a binary built without the stamp (go build, go install), what Go recorded about the
// build in the binary itself.
package buildinfo

import "runtime/debug"

// Unstamped is the value of a version variable that no -ldflags -X has set.
const Unstamped = "dev"

// Version returns stamped when a build stamped it; otherwise the main module's version Go
// recorded (a tag, or a pseudo-version derived from the commit), else the commit Go recorded
// ("<12 hex digits>", "-dirty" when the work tree had changes); else Unstamped.
func Version(stamped string) string {
	info, ok := debug.ReadBuildInfo()
	return fromBuild(stamped, info, ok)
}

func fromBuild(stamped string, info *debug.BuildInfo, ok bool) string {
	if stamped != "" && stamped != Unstamped {
		return stamped
	}
	if !ok || info == nil {
		return Unstamped
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return Unstamped
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
