package host

import (
	"os"
	"sync"
	"testing"

	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/loader"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// Real pipelines: the built-in components (FSBufferedStorageSourceAdapter, LatestLedger) on a
// filesystem datastore in the galexie layout built from the SDK's real pubnet ledgers, plus the
// test components for fault injection and for recording what consumers saw.

const fixtureCount = 16 // ledgers 58752000..58752015

var (
	sharedOnce sync.Once
	sharedDS   *fixture.Datastore
	sharedDir  string
	sharedErr  error
)

// sharedDatastore is one fixture datastore for the whole package (read only; removed by
// TestMain).
func sharedDatastore(t testing.TB) *fixture.Datastore {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "cdpd-host-ds-")
		if sharedErr == nil {
			sharedDS, sharedErr = fixture.Build(sharedDir, fixture.Options{Count: fixtureCount})
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedDS
}

// realRegistry is the built-in registry plus the test components bound to l.
func (l *lab) realRegistry(t testing.TB) *component.Registry {
	r := l.registry(t)
	if err := builtin.Register(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// fsSource is the FS datastore source over dir (end 0: follow the tip), reading ahead little:
// many pipelines share two cores in these tests.
func fsSource(dir string, start, end uint32) loader.Component {
	c := comp_("FSBufferedStorageSourceAdapter", "path", dir, "network", "pubnet", "start_ledger", start,
		"buffer_size", 2, "num_workers", 1)
	if end != 0 {
		c.Config["end_ledger"] = end
	}
	return c
}

// latestLedger is the built-in LatestLedger processor on pubnet.
func latestLedger() loader.Component { return comp_("LatestLedger", "network", "pubnet") }
