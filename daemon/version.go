package daemon

import "github.com/withobsrvr/cdpd/internal/buildinfo"

// Version is this build's version, as `cdpd version`, the cdpd_build_info metric and every
// registration report it. `make build` stamps it with
// -ldflags "-X github.com/withobsrvr/cdpd/daemon.Version=$(git describe --tags --always --dirty)";
// a build without the stamp reports what Go recorded about it (see internal/buildinfo).
var Version = buildinfo.Unstamped

func init() { Version = buildinfo.Version(Version) }
