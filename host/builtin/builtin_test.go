package builtin

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

// The CDP type names existing pipeline files use are all known.
func TestRegistryKnowsTheCDPTypeNames(t *testing.T) {
	r, err := Registry()
	if err != nil {
		t.Fatal(err)
	}
	for kind, names := range map[component.Kind][]string{
		component.KindSource: {"BufferedStorageSourceAdapter", "GCSBufferedStorageSourceAdapter",
			"S3BufferedStorageSourceAdapter", "FSBufferedStorageSourceAdapter", "RPCSourceAdapter"},
		component.KindProcessor: {"LatestLedger", "ContractEvent"},
		component.KindConsumer:  {"StdoutConsumer", "StdoutSink", "SaveToParquet", "SaveToPostgreSQL"},
	} {
		for _, n := range names {
			if !r.Known(kind, n) {
				t.Errorf("%s %s is not registered (known: %v)", kind, n, r.Names(kind))
			}
		}
	}
	// Registering twice into one registry is rejected (duplicate names), not silently merged.
	if err := Register(r); err == nil {
		t.Error("registering the built-ins twice succeeded")
	}
}
