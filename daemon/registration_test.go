package daemon

import (
	"testing"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/internal/shard"
	"github.com/withobsrvr/cdpd/loader"
)

// The registration names the network the pipeline's components use: a source that gives only
// network_passphrase registers that, not an empty network.
func TestRegistrationNetworkIsThePipelines(t *testing.T) {
	const passphrase = "Test SDF Network ; September 2015"
	for _, def := range []*loader.Pipeline{
		{Name: "a", File: "a.yaml", Source: loader.Component{Config: map[string]any{"network": "pubnet"}}},
		{Name: "b", File: "b.yaml", Source: loader.Component{Config: map[string]any{"network_passphrase": passphrase}}},
		{Name: "c", File: "c.yaml", Source: loader.Component{Config: map[string]any{}}},
	} {
		r := registration("cdp-"+def.Name, def.Name, def, "eu-1", shard.Spec{Index: 2, Count: 3})
		md := r.Metadata
		if md[contract.MetaNetwork] != def.Network() {
			t.Errorf("%s: network %q, the pipeline's components use %q", def.Name, md[contract.MetaNetwork], def.Network())
		}
		if md[contract.MetaServiceType] != contract.ServiceTypePipeline || md[contract.MetaConfigFile] != def.File ||
			md[contract.MetaInstance] != "eu-1" || md[contract.MetaVersion] != Version ||
			md[contract.MetaShard] != "2" || md[contract.MetaShardCount] != "3" {
			t.Errorf("%s: metadata %v", def.Name, md)
		}
	}
	if got := registration("x", "b", &loader.Pipeline{Source: loader.Component{Config: map[string]any{"network_passphrase": passphrase}}}, "", shard.Spec{}).Metadata[contract.MetaNetwork]; got != passphrase {
		t.Errorf("network_passphrase only: registered network %q", got)
	}
}
