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

// TickerAsset is one asset touched by an operation, with upstream CDP's TickerAsset field
// names (code ... operation_type, type) and the position of the operation.
type TickerAsset struct {
	Code            string     `json:"code"`   // XLM for the native asset, POOL for a pool share
	Issuer          string     `json:"issuer"` // G...; "" for XLM; the pool id (hex) for a pool share
	AssetType       string     `json:"asset_type"`
	Amount          string     `json:"amount"` // stroops (payment, claimable balance); "" otherwise
	AuthRequired    bool       `json:"auth_required"`
	AuthRevocable   bool       `json:"auth_revocable"`
	AuthImmutable   bool       `json:"auth_immutable"`
	AuthClawback    bool       `json:"auth_clawback"`
	IsValid         bool       `json:"is_valid"`
	ValidationError string     `json:"validation_error"`
	LastValid       *time.Time `json:"last_valid"` // close time when valid, else null
	LastChecked     time.Time  `json:"last_checked"`
	FirstSeenLedger uint32     `json:"first_seen_ledger"`
	DisplayDecimals int        `json:"display_decimals"`
	Type            string     `json:"type"`           // operation_type; claimable_balance for create_claimable_balance
	OperationType   string     `json:"operation_type"` // set_trust_line_flags|change_trust|payment|create_claimable_balance
	// TrustlineSetFlags / TrustlineClearFlags are a set_trust_line_flags operation's trustline
	// flags (1 authorized, 2 authorized to maintain liabilities, 4 clawback enabled); null
	// for the other operations.
	TrustlineSetFlags   *uint32   `json:"trustline_set_flags"`
	TrustlineClearFlags *uint32   `json:"trustline_clear_flags"`
	LedgerSequence      uint32    `json:"ledger_sequence"`
	ClosedAt            time.Time `json:"closed_at"`
	TransactionHash     string    `json:"transaction_hash"`
	TransactionIndex    int       `json:"transaction_index"` // 1-based, apply order
	OperationIndex      int       `json:"operation_index"`   // 0-based
	OperationID         int64     `json:"operation_id"`

	network string
}

// RecordKind implements component.Record.
func (TickerAsset) RecordKind() string { return "ticker_assets" }

// NaturalKey implements component.Record: network, ledger, transaction and operation.
func (r TickerAsset) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.Itoa(r.OperationIndex))
}

type tickerAssetConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// tickerOps are the operation types TransformToTickerAsset reads, with the type it gives.
var tickerOps = map[xdr.OperationType]string{
	xdr.OperationTypeSetTrustLineFlags:      "set_trust_line_flags",
	xdr.OperationTypeChangeTrust:            "change_trust",
	xdr.OperationTypePayment:                "payment",
	xdr.OperationTypeCreateClaimableBalance: "claimable_balance",
}

// TransformToTickerAsset emits one record per asset touched by a successful
// set_trust_line_flags, change_trust, payment or create_claimable_balance operation (in the
// account domain, beside the trustlines: the asset is what an account trusts, is paid in, or
// has its trustline flags set for). It reads the transactions through the SDK's zero-copy
// views (ingest.LedgerTransactionViewRange, as CreateAccount) and decodes only the envelopes of
// successful transactions that have one of the four operations. Its input records are ignored
// (as upstream's, it reads the ledger); SaveAssetToPostgreSQL folds its records into one row
// per asset.
//
// Config: network | network_passphrase (or the pipeline's network).
//
// Replay: every field comes from the ledger, so a replay emits the same records under the same
// keys (network:ledger:transaction hash:operation index).
//
// Differences from upstream, each a fix:
//   - last_checked and last_valid are the ledger's close time; upstream stamped time.Now(),
//     so a replay produced different rows.
//   - auth_required, auth_revocable, auth_immutable and auth_clawback are the issuer
//     account's flags (AccountFlags 1, 2, 4, 8), which no operation carries: they are false
//     here. Upstream set auth_required from a set_trust_line_flags operation's trustline
//     AUTHORIZED flag and auth_revocable from its TRUSTLINE_CLAWBACK_ENABLED flag (trustline
//     flags of one holder, not the asset's); cdpd reports those operation flags as they are,
//     in trustline_set_flags / trustline_clear_flags.
//   - operations of failed transactions touched nothing and are skipped (upstream emitted them).
//   - a pool share's issuer is the liquidity pool id (hex), unique per pool; upstream's
//     "lp:XLM-USD:30" made pools of different USD issuers one asset.
//   - stellar.toml metadata (home_domain, name, description, conditions, ...) is not in the
//     ledger and upstream never filled it: those fields are absent, not empty strings.
type TransformToTickerAsset struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewTransformToTickerAsset is the TransformToTickerAsset constructor.
func NewTransformToTickerAsset(c *tickerAssetConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("TransformToTickerAsset", env)
	if err != nil {
		return nil, err
	}
	return &TransformToTickerAsset{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"assets_found", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *TransformToTickerAsset) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor. The input records are ignored.
func (p *TransformToTickerAsset) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	out := []component.Record{}
	want := func(t xdr.OperationType) bool { _, ok := tickerOps[t]; return ok }
	err := eachSuccessfulEnvelope(ctx, l, p.net, want, func(tx ingest.LedgerTransactionView, env *xdr.TransactionEnvelope) error {
		var err error
		out, err = p.operations(out, l, xdr.Hash(tx.Hash).HexString(), int(tx.ApplicationOrder), env)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("TransformToTickerAsset: %w", err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["assets_found"] += float64(len(out))
	})
	return out, nil
}

// operations appends the asset records of one successful transaction (index is its 1-based
// apply order).
func (p *TransformToTickerAsset) operations(out []component.Record, l *ledger.Ledger, hash string, index int, env *xdr.TransactionEnvelope) ([]component.Record, error) {
	for i, op := range env.Operations() {
		typ, ok := tickerOps[op.Body.Type]
		if !ok {
			continue
		}
		closed := l.CloseTime()
		r := TickerAsset{network: p.net.Name, Type: typ, OperationType: typ, LastChecked: closed, FirstSeenLedger: l.Sequence(),
			DisplayDecimals: 7, LedgerSequence: l.Sequence(), ClosedAt: closed, TransactionHash: hash, TransactionIndex: index,
			OperationIndex: i, OperationID: processor.OperationID(l.Sequence(), index, i)}
		var err error
		switch b := op.Body; b.Type {
		case xdr.OperationTypeSetTrustLineFlags:
			f := b.MustSetTrustLineFlagsOp()
			set, clr := uint32(f.SetFlags), uint32(f.ClearFlags)
			r.TrustlineSetFlags, r.TrustlineClearFlags = &set, &clr
			err = setAsset(&r, f.Asset)
		case xdr.OperationTypeChangeTrust:
			err = setChangeTrustAsset(&r, b.MustChangeTrustOp().Line)
		case xdr.OperationTypePayment:
			pay := b.MustPaymentOp()
			r.Amount = strconv.FormatInt(int64(pay.Amount), 10)
			err = setAsset(&r, pay.Asset)
		case xdr.OperationTypeCreateClaimableBalance:
			r.OperationType = "create_claimable_balance"
			cb := b.MustCreateClaimableBalanceOp()
			r.Amount = strconv.FormatInt(int64(cb.Amount), 10)
			err = setAsset(&r, cb.Asset)
		}
		if err != nil {
			return nil, fmt.Errorf("ledger %d transaction %s operation %d: %w", l.Sequence(), hash, i, err)
		}
		r.IsValid = r.Code != ""
		if r.IsValid {
			r.LastValid = &closed
		} else {
			r.ValidationError = "Missing asset code"
		}
		out = append(out, r)
	}
	return out, nil
}

// setAsset fills code, issuer and asset_type from an asset (XLM and no issuer for native).
func setAsset(r *TickerAsset, a xdr.Asset) error {
	if err := a.Extract(&r.AssetType, &r.Code, &r.Issuer); err != nil {
		return fmt.Errorf("reading asset: %w", err)
	}
	if a.Type == xdr.AssetTypeAssetTypeNative {
		r.Code = "XLM"
	}
	return nil
}

// setChangeTrustAsset is setAsset for a change_trust line, which may be a pool share: code
// POOL, issuer the pool id.
func setChangeTrustAsset(r *TickerAsset, line xdr.ChangeTrustAsset) error {
	if line.Type != xdr.AssetTypeAssetTypePoolShare {
		return setAsset(r, line.ToAsset())
	}
	cp := line.MustLiquidityPool().MustConstantProduct()
	id, err := xdr.NewPoolId(cp.AssetA, cp.AssetB, cp.Fee)
	if err != nil {
		return fmt.Errorf("liquidity pool id: %w", err)
	}
	r.Code, r.Issuer, r.AssetType = "POOL", hex.EncodeToString(id[:]), "liquidity_pool_share"
	return nil
}
