package account

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// AppTrustline is one change of a trustline ledger entry, with upstream CDP's AppTrustline
// field names. The entry is the trustline after the change, or before it for a removal.
// Amounts are stroops as decimal strings.
type AppTrustline struct {
	Timestamp                       string    `json:"timestamp"` // close time, unix seconds
	AccountID                       string    `json:"account_id"`
	AssetCode                       string    `json:"asset_code"`   // "POOL" for liquidity pool shares (as upstream)
	AssetIssuer                     string    `json:"asset_issuer"` // the pool id for pool shares (as upstream)
	Balance                         string    `json:"balance"`
	BuyingLiabilities               string    `json:"buying_liabilities"`
	SellingLiabilities              string    `json:"selling_liabilities"`
	Limit                           string    `json:"limit"`
	Action                          string    `json:"action"` // created|updated|removed
	Type                            string    `json:"type"`   // trustline, or trustline_flags when set_trust_line_flags / allow_trust made the change
	LedgerSeq                       uint32    `json:"ledger_seq"`
	TxHash                          *string   `json:"tx_hash"`    // null for changes not made by a transaction
	AuthFlags                       uint32    `json:"auth_flags"` // the trustline's flags
	Authorized                      bool      `json:"authorized"`
	AuthorizedToMaintainLiabilities bool      `json:"authorized_to_maintain_liabilities"`
	ClawbackEnabled                 bool      `json:"clawback_enabled"`
	IsPoolShare                     bool      `json:"is_pool_share"`
	PoolID                          *string   `json:"pool_id"`        // hex liquidity pool id of a pool share trustline
	PreviousFlags                   *uint32   `json:"previous_flags"` // before an update; null otherwise
	PreviousLimit                   *string   `json:"previous_limit"`
	LastModifiedLedger              uint32    `json:"last_modified_ledger"`
	LedgerEntryChange               uint32    `json:"ledger_entry_change"` // xdr.LedgerEntryChangeType: 0 created, 1 updated, 2 removed
	ClosedAt                        time.Time `json:"closed_at"`
	OperationID                     *int64    `json:"operation_id"` // null unless an operation made the change
	ChangeIndex                     int       `json:"change_index"` // position among the ledger's trustline changes

	network string
}

// RecordKind implements component.Record.
func (AppTrustline) RecordKind() string { return "app_trustlines" }

// NaturalKey implements component.Record: network, ledger, change position, account and asset.
func (r AppTrustline) NaturalKey() string {
	return key(r.network, r.LedgerSeq, r.ChangeIndex, r.AccountID+":"+r.AssetCode+":"+r.AssetIssuer)
}

type transformToAppTrustlineConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// TransformToAppTrustline emits every trustline entry change of the ledger (created, updated,
// removed), read through the SDK's ledger change reader on the shared decoded ledger, whatever
// made it: change_trust, set_trust_line_flags, allow_trust, but also payments, trades and
// claims that move a trustline's balance. Its input records are ignored (as upstream's, it
// reads the ledger).
//
// Config: network | network_passphrase (or the pipeline's network).
//
// Differences from upstream, each a fix: upstream emitted one row per change_trust or
// set_trust_line_flags operation, of failed transactions too, with the balance read from the
// first operation's meta of the transaction (zero for most), "created" for every non-zero
// limit, and a made-up pool id; set_trust_line_flags rows had neither account nor flags. cdpd
// emits the trustline entries themselves. auth_required, auth_revocable and auth_immutable
// (account flags of the issuer, which upstream never set) are left out; the trustline's own
// flags are auth_flags and the three booleans after it. Upstream's metadata object is
// replaced by last_modified_ledger.
type TransformToAppTrustline struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewTransformToAppTrustline is the TransformToAppTrustline constructor.
func NewTransformToAppTrustline(c *transformToAppTrustlineConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("TransformToAppTrustline", env)
	if err != nil {
		return nil, err
	}
	return &TransformToAppTrustline{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"trustlines_found", "created", "updated", "removed", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *TransformToAppTrustline) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *TransformToAppTrustline) NeedsDecode() bool { return true }

// Process implements component.Processor. The input records are ignored.
func (p *TransformToAppTrustline) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	out := []component.Record{}
	kinds := map[string]int{}
	err := eachChange(ctx, l, p.net, xdr.LedgerEntryTypeTrustline, func(ch ingest.Change, e *xdr.LedgerEntry, c changeContext) error {
		r, err := p.record(ch, e, c, l)
		if err != nil {
			return err
		}
		kinds[r.Action]++
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("TransformToAppTrustline: %w", err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["trustlines_found"] += float64(len(out))
		for k, n := range kinds {
			m[k] += float64(n)
		}
	})
	return out, nil
}

func (p *TransformToAppTrustline) record(ch ingest.Change, e *xdr.LedgerEntry, c changeContext, l *ledger.Ledger) (AppTrustline, error) {
	tl := e.Data.MustTrustLine()
	liab := tl.Liabilities()
	flags := xdr.TrustLineFlags(tl.Flags)
	r := AppTrustline{
		Timestamp:                       strconv.FormatInt(l.CloseTime().Unix(), 10),
		AccountID:                       tl.AccountId.Address(),
		Balance:                         strconv.FormatInt(int64(tl.Balance), 10),
		BuyingLiabilities:               strconv.FormatInt(int64(liab.Buying), 10),
		SellingLiabilities:              strconv.FormatInt(int64(liab.Selling), 10),
		Limit:                           strconv.FormatInt(int64(tl.Limit), 10),
		Action:                          c.changeType,
		Type:                            "trustline",
		LedgerSeq:                       l.Sequence(),
		TxHash:                          c.txHash,
		AuthFlags:                       uint32(tl.Flags),
		Authorized:                      flags.IsAuthorized(),
		AuthorizedToMaintainLiabilities: flags.IsAuthorizedToMaintainLiabilitiesFlag(),
		ClawbackEnabled:                 flags.IsClawbackEnabledFlag(),
		LastModifiedLedger:              uint32(e.LastModifiedLedgerSeq),
		LedgerEntryChange:               uint32(ch.ChangeType), //nolint:gosec // small enum
		ClosedAt:                        l.CloseTime(),
		OperationID:                     c.operationID,
		ChangeIndex:                     c.index,
		network:                         p.net.Name,
	}
	if c.opType != nil && (*c.opType == xdr.OperationTypeSetTrustLineFlags || *c.opType == xdr.OperationTypeAllowTrust) {
		r.Type = "trustline_flags"
	}
	switch tl.Asset.Type {
	case xdr.AssetTypeAssetTypePoolShare:
		id := tl.Asset.MustLiquidityPoolId()
		s := hex.EncodeToString(id[:])
		r.IsPoolShare, r.PoolID, r.AssetCode, r.AssetIssuer = true, &s, "POOL", s
	case xdr.AssetTypeAssetTypeCreditAlphanum4, xdr.AssetTypeAssetTypeCreditAlphanum12:
		var code, issuer string
		if err := tl.Asset.Extract(new(xdr.AssetType), &code, &issuer); err != nil {
			return r, fmt.Errorf("trustline asset: %w", err)
		}
		r.AssetCode, r.AssetIssuer = code, issuer
	default:
		return r, fmt.Errorf("trustline of asset type %v", tl.Asset.Type)
	}
	if ch.ChangeType == xdr.LedgerEntryChangeTypeLedgerEntryUpdated && ch.Pre != nil {
		if pre, ok := ch.Pre.Data.GetTrustLine(); ok {
			f, lim := uint32(pre.Flags), strconv.FormatInt(int64(pre.Limit), 10)
			r.PreviousFlags, r.PreviousLimit = &f, &lim
		}
	}
	return r, nil
}
