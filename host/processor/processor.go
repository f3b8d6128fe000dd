// Package processor owns what cdpd's built-in CDP processors share (the network a processor
// follows, TOIDs, stats counters, Soroban value encoding, view walks); the processors live in
// its domain packages, one file (and test) each, registered by host/builtin's table:
//
//   - contract: Soroban contracts (ContractEvent, ContractData, ...)
//   - effects: Horizon's operation effects (StellarEffects)
//   - payment: payments and token movements (FilterPayments, TransformToAppPayment,
//     TokenTransfer, ...)
//   - raw: whole ledgers and transactions (LatestLedger, ...)
//   - wallet: the wallet-backend chain (TransactionXDRExtractor, WalletBackend,
//     ParticipantExtractor)
//
// proctest holds what their tests share (the SDK's real pubnet ledgers, references, synthetic
// ledgers).
//
// Rules every processor follows: every record carries the ledger sequence and close time, and
// its NaturalKey starts with the network name and the ledger sequence, so replays upsert
// instead of doubling rows. The zero-copy view is used wherever it serves; a processor that
// needs the full decode takes the ledger's shared decoded value (ledger.Decoded: decoded once
// for every processor of the ledger) and never mutates it. Processors are called from one
// goroutine per pipeline in ledger order; their stats are guarded (Counters) because the host
// reads them from another goroutine.
package processor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/toid"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
)

// NetworkConfig holds the keys that select the network; every processor accepts them.
type NetworkConfig struct {
	Network           string `mapstructure:"network"`
	NetworkPassphrase string `mapstructure:"network_passphrase"`
}

// NetID is a resolved network: its passphrase and the short name used in natural keys.
type NetID struct {
	Name       string
	Passphrase string
}

// resolve turns the network keys into a NetID. `network` names a well-known network
// (pubnet|mainnet|public, testnet, futurenet); `network_passphrase` gives one explicitly.
// When both are given they must agree. A passphrase that is not a well-known one gets the name
// "custom-<first 8 hex of its sha256>". A processor that names neither follows the pipeline's
// network (pipelineNetwork: its source's `network`, or its `network_passphrase`).
func (c NetworkConfig) Resolve(pipelineNetwork string) (NetID, error) {
	if c.Network == "" && c.NetworkPassphrase == "" && pipelineNetwork != "" {
		if _, known := WellKnownPassphrase(pipelineNetwork); known {
			c.Network = pipelineNetwork
		} else {
			c.NetworkPassphrase = pipelineNetwork
		}
	}
	var fromName NetID
	if c.Network != "" {
		var ok bool
		if fromName, ok = WellKnownPassphrase(c.Network); !ok {
			return NetID{}, fmt.Errorf("unknown network %q (want pubnet, mainnet, testnet or futurenet, or give network_passphrase)", c.Network)
		}
	}
	if c.NetworkPassphrase == "" {
		if c.Network == "" {
			return NetID{}, fmt.Errorf("network or network_passphrase is required (in the processor or the pipeline's source)")
		}
		return fromName, nil
	}
	var fromPass NetID
	switch c.NetworkPassphrase {
	case network.PublicNetworkPassphrase:
		fromPass = NetID{"pubnet", c.NetworkPassphrase}
	case network.TestNetworkPassphrase:
		fromPass = NetID{"testnet", c.NetworkPassphrase}
	case network.FutureNetworkPassphrase:
		fromPass = NetID{"futurenet", c.NetworkPassphrase}
	default:
		sum := sha256.Sum256([]byte(c.NetworkPassphrase))
		fromPass = NetID{"custom-" + hex.EncodeToString(sum[:4]), c.NetworkPassphrase}
	}
	if c.Network != "" && fromName != fromPass {
		return NetID{}, fmt.Errorf("network %q does not match the given network_passphrase", c.Network)
	}
	return fromPass, nil
}

// ResolveFor resolves the network the processor's config names, or else the pipeline's
// (env.Network). Errors start with the processor's type name.
func (c NetworkConfig) ResolveFor(typeName string, env component.Env) (NetID, error) {
	net, err := c.Resolve(env.Network)
	if err != nil {
		return NetID{}, fmt.Errorf("%s: %w", typeName, err)
	}
	return net, nil
}

// WellKnownPassphrase maps a network name (pubnet|mainnet|public, testnet, futurenet) to its
// passphrase.
func WellKnownPassphrase(name string) (NetID, bool) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "pubnet", "mainnet", "public":
		return NetID{"pubnet", network.PublicNetworkPassphrase}, true
	case "testnet":
		return NetID{"testnet", network.TestNetworkPassphrase}, true
	case "futurenet":
		return NetID{"futurenet", network.FutureNetworkPassphrase}, true
	}
	return NetID{}, false
}

// Key is a record's natural key (component.Record): the network's short name, the ledger
// sequence and parts, joined by ":" ("<network>:<ledger>" for a record per ledger).
func Key(network string, ledger uint32, parts ...string) string {
	// Built in one allocation: a sink calls NaturalKey for every row it writes.
	n := len(network) + 11 // ':' and up to 10 digits
	for _, p := range parts {
		n += 1 + len(p)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(network)
	b.WriteByte(':')
	var digits [10]byte
	b.Write(strconv.AppendUint(digits[:0], uint64(ledger), 10))
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

// TransactionID is the TOID of a transaction (index is 1-based, in apply order).
func TransactionID(seq uint32, txIndex int) int64 {
	return toid.New(int32(seq), int32(txIndex), 0).ToInt64() //nolint:gosec // ledger seqs fit int32
}

// OperationID is the TOID of an operation (opIndex is 0-based; TOIDs count operations from 1).
func OperationID(seq uint32, txIndex, opIndex int) int64 {
	return toid.New(int32(seq), int32(txIndex), int32(opIndex)+1).ToInt64() //nolint:gosec // as above
}

// Counters is a small mutex-guarded stats map shared by the processors.
type Counters struct {
	mu   sync.Mutex
	vals map[string]float64
}

func NewCounters(keys ...string) *Counters {
	c := &Counters{vals: make(map[string]float64, len(keys))}
	for _, k := range keys {
		c.vals[k] = 0
	}
	return c
}

// update applies f to the map under the lock.
func (c *Counters) Update(f func(m map[string]float64)) {
	c.mu.Lock()
	f(c.vals)
	c.mu.Unlock()
}

// snapshot returns a copy of the map.
func (c *Counters) Snapshot() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]float64, len(c.vals))
	for k, v := range c.vals {
		out[k] = v
	}
	return out
}

// LedgerDone records the common per-ledger stats.
func LedgerDone(m map[string]float64, seq uint32, now time.Time) {
	m["processed_ledgers"]++
	m["last_ledger"] = float64(seq)
	m["last_processed_time"] = float64(now.Unix())
}

// clock returns env.Now or time.Now.
func Clock(env component.Env) func() time.Time {
	if env.Now != nil {
		return env.Now
	}
	return time.Now
}

// AccountOf is the G... address of a (possibly muxed) account and its M... form when muxed.
func AccountOf(m xdr.MuxedAccount) (string, *string) {
	g := m.ToAccountId().Address()
	if m.Type == xdr.CryptoKeyTypeKeyTypeMuxedEd25519 {
		if addr, err := m.GetAddress(); err == nil {
			return g, &addr
		}
	}
	return g, nil
}
