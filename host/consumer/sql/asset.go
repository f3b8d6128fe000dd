package sql

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor/account"
	"github.com/withobsrvr/cdpd/host/processor/payment"
)

// assetRow is one row of upstream's assets table: one asset (code, issuer) per network.
type assetRow struct {
	Code            string     `json:"code"`
	Issuer          string     `json:"issuer"`
	AssetType       string     `json:"asset_type"`
	AuthRequired    bool       `json:"auth_required"`
	AuthRevocable   bool       `json:"auth_revocable"`
	AuthImmutable   bool       `json:"auth_immutable"`
	AuthClawback    bool       `json:"auth_clawback"`
	IsValid         bool       `json:"is_valid"`
	ValidationError string     `json:"validation_error"`
	LastValid       *time.Time `json:"last_valid"`
	LastChecked     time.Time  `json:"last_checked"`
	FirstSeenLedger uint32     `json:"first_seen_ledger"`
	LastSeenLedger  uint32     `json:"last_seen_ledger"`
	DisplayDecimals int        `json:"display_decimals"`
	Type            string     `json:"type"`
	OperationType   string     `json:"operation_type"`

	key string
}

func (assetRow) RecordKind() string   { return "assets" }
func (r assetRow) NaturalKey() string { return r.key }

// assetsLayout: one row per asset, first_seen_ledger as first written.
var assetsLayout = &Layout{Others: OthersError, Tables: map[string]Table{
	"assets": {Name: "assets", Keep: []string{"first_seen_ledger"}},
}}

// SaveAssetToPostgreSQL writes upstream's assets table: one row per asset and network
// (natural_key "<network>:<code>:<issuer>"; code and issuer columns as upstream's), through
// cdpd's PostgreSQL writer (the keys of the typed PostgreSQL consumers). It takes
// TransformToTickerAsset's records and the payments of FilterPayments (payments) and
// TransformToAppPayment (app_payments), whose asset it derives (code, issuer, asset_type;
// XLM with no issuer for the native asset); other kinds are an error. first_seen_ledger is the
// first ledger the asset was seen in (the table's Keep column: never overwritten by an
// upsert, as upstream's ON CONFLICT left it); the other columns, and last_seen_ledger (new
// here), are the latest record's. For a payment, type is "payment" and operation_type the
// payment's type (payment, path_payment_strict_send, ...); last_checked and last_valid are the
// ledger's close time.
//
// Data safety: exactly-once, as every writer of this package (rows and cursor in one
// transaction); a replay writes the same rows.
//
// Differences from upstream, each a fix: upstream unmarshalled every message into its asset
// struct, so the payments of its own blank pipeline (LedgerReader -> FilterPayments ->
// SaveAssetToPostgreSQL) became rows with an empty code and issuer (one row, overwritten):
// cdpd derives each payment's asset. Upstream's stellar.toml columns (home_domain, name,
// description, ...) were never filled and are absent; upstream's timestamps were the wall
// clock's (see TransformToTickerAsset).
type SaveAssetToPostgreSQL struct {
	*Postgres
}

// NewSaveAssetToPostgreSQL is the SaveAssetToPostgreSQL constructor.
func NewSaveAssetToPostgreSQL(u *UpstreamPostgresConfig, env component.Env) (component.Consumer, error) {
	c, err := typedPostgres("SaveAssetToPostgreSQL", assetsLayout)(u, env)
	if err != nil {
		return nil, err
	}
	return &SaveAssetToPostgreSQL{Postgres: c.(*Postgres)}, nil
}

// Consume turns the ledger's records into asset rows and hands them to the writer.
func (s *SaveAssetToPostgreSQL) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	rows := make([]component.Record, 0, len(recs))
	for _, r := range recs {
		row, err := assetOf(r)
		if err != nil {
			return fmt.Errorf("SaveAssetToPostgreSQL: ledger %d: %w", l.Sequence(), err)
		}
		rows = append(rows, row)
	}
	return s.Postgres.Consume(ctx, l, rows)
}

// assetOf is the asset row of a record.
func assetOf(r component.Record) (assetRow, error) {
	var a assetRow
	switch x := r.(type) {
	case account.TickerAsset:
		a = assetRow{Code: x.Code, Issuer: x.Issuer, AssetType: x.AssetType, AuthRequired: x.AuthRequired,
			AuthRevocable: x.AuthRevocable, AuthImmutable: x.AuthImmutable, AuthClawback: x.AuthClawback, IsValid: x.IsValid,
			ValidationError: x.ValidationError, LastValid: x.LastValid, LastChecked: x.LastChecked, FirstSeenLedger: x.FirstSeenLedger,
			LastSeenLedger: x.LedgerSequence, DisplayDecimals: x.DisplayDecimals, Type: x.Type, OperationType: x.OperationType}
	case payment.PaymentRecord:
		a = paymentAsset(x.ClosedAt, x.LedgerSequence, x.Type)
		a.AssetType = x.AssetType
		if x.AssetCode != nil && x.AssetIssuer != nil {
			a.Code, a.Issuer = *x.AssetCode, *x.AssetIssuer
		}
	case payment.AppPayment:
		a = paymentAsset(x.ClosedAt, x.LedgerSequence, x.Type)
		if code, issuer, ok := strings.Cut(x.AssetCode, ":"); ok {
			a.Code, a.Issuer, a.AssetType = code, issuer, "credit_alphanum4"
			if len(code) > 4 {
				a.AssetType = "credit_alphanum12"
			}
		}
	default:
		return a, fmt.Errorf("records of kind %q are not written by this consumer (it takes ticker_assets, payments, app_payments)", r.RecordKind())
	}
	network, _, _ := strings.Cut(r.NaturalKey(), ":")
	a.key = network + ":" + a.Code + ":" + a.Issuer
	return a, nil
}

// paymentAsset is the row of a payment's asset, native until the caller says otherwise.
func paymentAsset(closed time.Time, seq uint32, opType string) assetRow {
	return assetRow{Code: "XLM", AssetType: "native", IsValid: true, LastValid: &closed, LastChecked: closed,
		FirstSeenLedger: seq, LastSeenLedger: seq, DisplayDecimals: 7, Type: "payment", OperationType: opType}
}
