// Package processor owns cdpd's built-in CDP processors: the components that turn a ledger
// (and the records of the processor before them) into output records. host/builtin's table
// registers each under its CDP type name and aliases:
//
//   - LatestLedger: one summary record per ledger, read from the zero-copy view.
//   - ContractEvent (ContractEventProcessor, StellarContractEvent): Soroban contract events as
//     history_contract_events rows, read from the view (no full ledger decode).
//   - TokenTransfer: the SDK's token_transfer events as token_transfers_raw rows.
//   - ContractData (ContractDataProcessor): contract data ledger entry changes.
//   - FilterPayments and TransformToAppPayment: payment operations and their flat app form.
//
// Every record carries the ledger sequence and close time, and its NaturalKey starts with the
// network name and the ledger sequence, so replays upsert instead of doubling rows.
// Processors are called from one goroutine per pipeline in ledger order; their stats are
// guarded by a mutex anyway, because the host reads them from another goroutine.
package processor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/toid"

	"github.com/withobsrvr/cdpd/host/component"
)

// networkConfig holds the keys that select the network; every processor accepts them.
type networkConfig struct {
	Network           string `mapstructure:"network"`
	NetworkPassphrase string `mapstructure:"network_passphrase"`
}

// netID is a resolved network: its passphrase and the short name used in natural keys.
type netID struct {
	Name       string
	Passphrase string
}

// resolve turns the network keys into a netID. `network` names a well-known network
// (pubnet|mainnet|public, testnet, futurenet); `network_passphrase` gives one explicitly.
// When both are given they must agree. A passphrase that is not a well-known one gets the name
// "custom-<first 8 hex of its sha256>". A processor that names neither follows the pipeline's
// network (pipelineNetwork: its source's `network`, or its `network_passphrase`).
func (c networkConfig) resolve(pipelineNetwork string) (netID, error) {
	if c.Network == "" && c.NetworkPassphrase == "" && pipelineNetwork != "" {
		if _, known := wellKnownPassphrase(pipelineNetwork); known {
			c.Network = pipelineNetwork
		} else {
			c.NetworkPassphrase = pipelineNetwork
		}
	}
	var fromName netID
	if c.Network != "" {
		var ok bool
		if fromName, ok = wellKnownPassphrase(c.Network); !ok {
			return netID{}, fmt.Errorf("unknown network %q (want pubnet, mainnet, testnet or futurenet, or give network_passphrase)", c.Network)
		}
	}
	if c.NetworkPassphrase == "" {
		if c.Network == "" {
			return netID{}, fmt.Errorf("network or network_passphrase is required (in the processor or the pipeline's source)")
		}
		return fromName, nil
	}
	var fromPass netID
	switch c.NetworkPassphrase {
	case network.PublicNetworkPassphrase:
		fromPass = netID{"pubnet", c.NetworkPassphrase}
	case network.TestNetworkPassphrase:
		fromPass = netID{"testnet", c.NetworkPassphrase}
	case network.FutureNetworkPassphrase:
		fromPass = netID{"futurenet", c.NetworkPassphrase}
	default:
		sum := sha256.Sum256([]byte(c.NetworkPassphrase))
		fromPass = netID{"custom-" + hex.EncodeToString(sum[:4]), c.NetworkPassphrase}
	}
	if c.Network != "" && fromName != fromPass {
		return netID{}, fmt.Errorf("network %q does not match the given network_passphrase", c.Network)
	}
	return fromPass, nil
}

// resolveFor resolves the network the processor's config names, or else the pipeline's
// (env.Network). Errors start with the processor's type name.
func (c networkConfig) resolveFor(typeName string, env component.Env) (netID, error) {
	net, err := c.resolve(env.Network)
	if err != nil {
		return netID{}, fmt.Errorf("%s: %w", typeName, err)
	}
	return net, nil
}

// wellKnownPassphrase maps a network name (pubnet|mainnet|public, testnet, futurenet) to its
// passphrase.
func wellKnownPassphrase(name string) (netID, bool) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "pubnet", "mainnet", "public":
		return netID{"pubnet", network.PublicNetworkPassphrase}, true
	case "testnet":
		return netID{"testnet", network.TestNetworkPassphrase}, true
	case "futurenet":
		return netID{"futurenet", network.FutureNetworkPassphrase}, true
	}
	return netID{}, false
}

// transactionID is the TOID of a transaction (index is 1-based, in apply order).
func transactionID(seq uint32, txIndex int) int64 {
	return toid.New(int32(seq), int32(txIndex), 0).ToInt64() //nolint:gosec // ledger seqs fit int32
}

// operationID is the TOID of an operation (opIndex is 0-based; TOIDs count operations from 1).
func operationID(seq uint32, txIndex, opIndex int) int64 {
	return toid.New(int32(seq), int32(txIndex), int32(opIndex)+1).ToInt64() //nolint:gosec // as above
}

// counters is a small mutex-guarded stats map shared by the processors.
type counters struct {
	mu   sync.Mutex
	vals map[string]float64
}

func newCounters(keys ...string) *counters {
	c := &counters{vals: make(map[string]float64, len(keys))}
	for _, k := range keys {
		c.vals[k] = 0
	}
	return c
}

// update applies f to the map under the lock.
func (c *counters) update(f func(m map[string]float64)) {
	c.mu.Lock()
	f(c.vals)
	c.mu.Unlock()
}

// snapshot returns a copy of the map.
func (c *counters) snapshot() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]float64, len(c.vals))
	for k, v := range c.vals {
		out[k] = v
	}
	return out
}

// ledgerDone records the common per-ledger stats.
func ledgerDone(m map[string]float64, seq uint32, now time.Time) {
	m["processed_ledgers"]++
	m["last_ledger"] = float64(seq)
	m["last_processed_time"] = float64(now.Unix())
}

// clock returns env.Now or time.Now.
func clock(env component.Env) func() time.Time {
	if env.Now != nil {
		return env.Now
	}
	return time.Now
}
