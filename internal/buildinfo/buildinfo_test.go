package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name    string
		stamped string
		info    *debug.BuildInfo
		want    string
	}{
		{"the stamp wins", "v1.2.0-3-gabc1234-dirty", &debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}}, "v1.2.0-3-gabc1234-dirty"},
		{"module version of go install", Unstamped, &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}}, "v1.3.0"},
		{"commit of a clean tree", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")}, "0123456789ab"},
		{"commit of a dirty tree", Unstamped, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")}, "0123456789ab-dirty"},
		{"nothing recorded", Unstamped, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, Unstamped},
		{"no build info", Unstamped, nil, Unstamped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuild(tc.stamped, tc.info, tc.info != nil); got != tc.want {
				t.Errorf("fromBuild(%q) = %q, want %q", tc.stamped, got, tc.want)
			}
		})
	}
}
