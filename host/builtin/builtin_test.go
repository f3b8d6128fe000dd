package builtin

import (
	"errors"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

func registry(t *testing.T) *component.Registry {
	t.Helper()
	r, err := Registry()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The CDP type names (and aliases) existing pipeline files use are all known.
func TestRegistryKnowsTheCDPTypeNames(t *testing.T) {
	r := registry(t)
	for kind, names := range map[component.Kind][]string{
		component.KindSource: {"BufferedStorageSourceAdapter", "GCSBufferedStorageSourceAdapter",
			"S3BufferedStorageSourceAdapter", "FSBufferedStorageSourceAdapter", "RPCSourceAdapter", "SorobanSourceAdapter",
			"CaptiveCoreInboundAdapter"},
		component.KindProcessor: {"LatestLedger", "ContractEvent", "ContractEventProcessor", "StellarContractEvent",
			"TokenTransfer", "ContractData", "ContractDataProcessor", "FilterPayments", "TransformToAppPayment"},
		component.KindConsumer: {"StdoutConsumer", "StdoutSink", "SaveToParquet", "SaveToPostgreSQL"},
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

// Every row of the table is documented, typed (so its keys are listed and unknown keys are
// reported) and upstream's names are the reference: each registered name that upstream also
// knows is of the same kind there.
func TestTableRows(t *testing.T) {
	r := registry(t)
	for _, s := range r.Specs() {
		if s.Doc == "" || !strings.HasSuffix(s.Doc, ".") {
			t.Errorf("%s %s: one-line description %q (want a sentence)", s.Kind, s.Type, s.Doc)
		}
		if !s.Typed() {
			t.Errorf("%s %s: untyped constructor in the built-in table", s.Kind, s.Type)
		}
	}
	if n := len(upstreamTypes[component.KindSource]) + len(upstreamTypes[component.KindProcessor]) + len(upstreamTypes[component.KindConsumer]); n != 105 {
		t.Errorf("%d upstream type names, want upstream's 105 (9 + 52 + 44)", n)
	}
}

// Processors that name no network follow the pipeline's; keys a component does not know are
// reported, not errors; an upstream-only type says so.
func TestCheckThroughTheTable(t *testing.T) {
	r := registry(t)
	for _, name := range []string{"LatestLedger", "ContractEvent", "TokenTransfer", "ContractData", "FilterPayments", "TransformToAppPayment"} {
		if _, err := r.Check(component.KindProcessor, name, map[string]any{}, ""); err == nil {
			t.Errorf("%s: missing network accepted", name)
		}
		if _, err := r.Check(component.KindProcessor, name, map[string]any{}, "pubnet"); err != nil {
			t.Errorf("%s does not follow the pipeline's network: %v", name, err)
		}
		unknown, err := r.Check(component.KindProcessor, name, map[string]any{"network": "testnet", "buffer_size": 1000}, "")
		if err != nil || len(unknown) != 1 || unknown[0].Key != "buffer_size" {
			t.Errorf("%s with buffer_size: unknown %v, err %v", name, unknown, err)
		}
	}
	_, err := r.Check(component.KindConsumer, "SaveToMongoDB", nil, "")
	if !errors.Is(err, component.ErrUnknownType) || !strings.Contains(err.Error(), "upstream CDP consumer type") {
		t.Errorf("SaveToMongoDB: %v", err)
	}
	_, err = r.Check(component.KindConsumer, "SaveToParqet", nil, "")
	if err == nil || !strings.Contains(err.Error(), "did you mean SaveToParquet") {
		t.Errorf("SaveToParqet: %v", err)
	}
}
