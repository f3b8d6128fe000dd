package daemon

import (
	"os/exec"
	"strings"
	"testing"
)

// testOnly are packages (and the packages under them) that only tests may link: the project's test helpers and the emulators
// and leak checkers they pull (the GCS emulator alone is a large module).
var testOnly = []string{
	"github.com/withobsrvr/cdpd/test",
	"github.com/withobsrvr/cdpd/internal/testutil",
	"github.com/fsouza/fake-gcs-server",
	"github.com/johannesboyne/gofakes3",
	"cloud.google.com/go/pubsub/pstest",
	"go.uber.org/goleak",
}

// TestNoTestOnlyDependencies: what cdpd links (this package, which its main only calls) holds
// no test helper, so building cdpd never downloads or compiles them.
func TestNoTestOnlyDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), deps)
	}
	for _, d := range deps {
		for _, bad := range testOnly {
			if d == bad || strings.HasPrefix(d, bad+"/") {
				t.Errorf("cdpd links %s, a test-only package", d)
			}
		}
	}
}
