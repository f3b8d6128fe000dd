// Package payment owns the processors of payments, trades and token movements: FilterPayments,
// TransformToAppPayment, TransformToAppTrade and TokenTransfer (the SDK's token_transfer
// processor).
package payment

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// PaymentRecord is one successful payment operation (payment, path_payment_strict_receive,
// path_payment_strict_send) as FilterPayments emits it. Amounts are what was delivered to the
// destination; for path payments the source side is given too (null for plain payments).
type PaymentRecord struct {
	TransactionHash  string    `json:"transaction_hash"`
	TransactionID    int64     `json:"transaction_id"`
	TransactionIndex int       `json:"transaction_index"` // 1-based, apply order
	OperationID      int64     `json:"operation_id"`
	OperationIndex   int       `json:"operation_index"` // 0-based
	Type             string    `json:"type"`            // payment|path_payment_strict_receive|path_payment_strict_send
	From             string    `json:"from"`            // G... account (muxed source resolved)
	FromMuxed        *string   `json:"from_muxed"`      // M... when the source was muxed
	To               string    `json:"to"`
	ToMuxed          *string   `json:"to_muxed"`
	AssetType        string    `json:"asset_type"` // native|credit_alphanum4|credit_alphanum12
	AssetCode        *string   `json:"asset_code"` // null for native
	AssetIssuer      *string   `json:"asset_issuer"`
	Amount           string    `json:"amount"`     // decimal, 7 places
	AmountRaw        int64     `json:"amount_raw"` // stroops
	SourceAssetType  *string   `json:"source_asset_type"`
	SourceAssetCode  *string   `json:"source_asset_code"`
	SourceAssetIssr  *string   `json:"source_asset_issuer"`
	SourceAmount     *string   `json:"source_amount"`
	SourceAmountRaw  *int64    `json:"source_amount_raw"`
	MemoType         string    `json:"memo_type"` // none|text|id|hash|return
	Memo             *string   `json:"memo"`      // text, decimal id, or hex hash; null for none
	LedgerSequence   uint32    `json:"ledger_sequence"`
	ClosedAt         time.Time `json:"closed_at"`

	network string
}

// RecordKind implements component.Record.
func (PaymentRecord) RecordKind() string { return "payments" }

// NaturalKey implements component.Record: network, ledger and operation id.
func (r PaymentRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.Itoa(r.OperationIndex))
}

// canonical is the asset as upstream CDP's asset_code column spells it: "native" or CODE:ISSUER.
func (r PaymentRecord) canonical() string {
	if r.AssetCode == nil {
		return "native"
	}
	return *r.AssetCode + ":" + *r.AssetIssuer
}

type assetFilterConfig struct {
	MinAmount   string `mapstructure:"min_amount"`
	AssetCode   string `mapstructure:"asset_code"`
	AssetIssuer string `mapstructure:"asset_issuer"`
}

// paymentFilter is min_amount / asset_code / asset_issuer.
type paymentFilter struct {
	min       *int64
	code      string // "" any; "native" for XLM
	issuer    string
	addresses map[string]bool
	memo      *string
}

func (c assetFilterConfig) build() (paymentFilter, error) {
	var f paymentFilter
	if s := strings.TrimSpace(c.MinAmount); s != "" {
		v, err := amount.ParseInt64(s)
		if err != nil {
			return f, fmt.Errorf("min_amount %q: %w", s, err)
		}
		f.min = &v
	}
	code, issuer := strings.TrimSpace(c.AssetCode), strings.TrimSpace(c.AssetIssuer)
	if cd, is, ok := strings.Cut(code, ":"); ok { // upstream's canonical CODE:ISSUER form
		if issuer != "" && issuer != is {
			return f, fmt.Errorf("asset_code %q and asset_issuer %q disagree", code, issuer)
		}
		code, issuer = cd, is
	}
	switch {
	case code == "":
		if issuer != "" {
			return f, fmt.Errorf("asset_issuer needs asset_code")
		}
	case strings.EqualFold(code, "native") || strings.EqualFold(code, "XLM") && issuer == "":
		code = "native"
		if issuer != "" {
			return f, fmt.Errorf("the native asset has no issuer")
		}
	case len(code) > 12:
		return f, fmt.Errorf("asset_code %q is longer than 12 characters", code)
	}
	if issuer != "" && !strkey.IsValidEd25519PublicKey(issuer) {
		return f, fmt.Errorf("asset_issuer %q is not an account id", issuer)
	}
	f.code, f.issuer = code, issuer
	return f, nil
}

func (f paymentFilter) match(r *PaymentRecord) bool {
	if f.min != nil && r.AmountRaw < *f.min {
		return false
	}
	switch f.code {
	case "":
	case "native":
		if r.AssetCode != nil {
			return false
		}
	default:
		if r.AssetCode == nil || *r.AssetCode != f.code || (f.issuer != "" && *r.AssetIssuer != f.issuer) {
			return false
		}
	}
	if f.addresses != nil && !f.addresses[r.From] && !f.addresses[r.To] &&
		(r.FromMuxed == nil || !f.addresses[*r.FromMuxed]) && (r.ToMuxed == nil || !f.addresses[*r.ToMuxed]) {
		return false
	}
	if f.memo != nil && (r.Memo == nil || *r.Memo != *f.memo) {
		return false
	}
	return true
}

type filterPaymentsConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	assetFilterConfig       `mapstructure:",squash"`
}

// FilterPayments emits the ledger's successful payment and path payment operations that pass
// its filters (min_amount in units of the asset, e.g. "100.5"; asset_code, "XLM"/"native" for
// lumens or CODE or CODE:ISSUER; asset_issuer). It reads the shared decoded ledger. It always
// returns a non-nil slice, so a TransformToAppPayment after it transforms its records instead
// of reading the ledger itself. It is also registered as PaymentProcessor, the name upstream's
// parquet-multi-consumer-pipeline example uses (upstream cannot load it; its min_amount key is
// FilterPayments').
type FilterPayments struct {
	net    processor.NetID
	filter paymentFilter
	now    func() time.Time
	stats  *processor.Counters
}

// NewFilterPayments is the FilterPayments constructor.
func NewFilterPayments(c *filterPaymentsConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("FilterPayments", env)
	if err != nil {
		return nil, err
	}
	f, err := c.build()
	if err != nil {
		return nil, fmt.Errorf("FilterPayments: %w", err)
	}
	return &FilterPayments{net: net, filter: f, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"payments_found", "payments_filtered", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *FilterPayments) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *FilterPayments) NeedsDecode() bool { return true }

// Prepare implements component.Preparer: the ledger's transactions (processor.Transactions)
// are read on the decode-ahead workers.
func (p *FilterPayments) Prepare(l *ledger.Ledger) {
	_, _ = processor.Transactions(l, p.net.Passphrase)
}

// Process implements component.Processor. The input records are ignored.
func (p *FilterPayments) Process(_ context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	all, err := ledgerPayments(l, p.net)
	if err != nil {
		return nil, fmt.Errorf("FilterPayments: %w", err)
	}
	out := make([]component.Record, 0, len(all))
	for i := range all {
		if p.filter.match(&all[i]) {
			out = append(out, all[i])
		}
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["payments_found"] += float64(len(out))
		m["payments_filtered"] += float64(len(all) - len(out))
	})
	return out, nil
}

// ledgerPayments reads every payment operation of the ledger's successful transactions, from
// the transactions the SDK's reader derives once per ledger from the shared decode
// (processor.Transactions).
func ledgerPayments(l *ledger.Ledger, net processor.NetID) ([]PaymentRecord, error) {
	txs, err := processor.Transactions(l, net.Passphrase)
	if err != nil {
		return nil, err
	}
	var out []PaymentRecord
	for ti := range txs {
		tx := &txs[ti]
		if !tx.Result.Successful() {
			continue
		}
		results, _ := tx.Result.OperationResults()
		base := PaymentRecord{network: net.Name, TransactionHash: tx.Hash.HexString(), TransactionIndex: int(tx.Index),
			TransactionID: processor.TransactionID(l.Sequence(), int(tx.Index)), LedgerSequence: l.Sequence(), ClosedAt: l.CloseTime()}
		base.MemoType, base.Memo = memoOf(tx.Envelope.Memo())
		for i, op := range tx.Envelope.Operations() {
			r := base
			r.OperationIndex = i
			r.OperationID = processor.OperationID(l.Sequence(), int(tx.Index), i)
			src := tx.Envelope.SourceAccount()
			if op.SourceAccount != nil {
				src = *op.SourceAccount
			}
			var (
				dst        xdr.MuxedAccount
				asset      xdr.Asset
				amt        xdr.Int64
				srcAsset   *xdr.Asset
				srcAmt     xdr.Int64
				haveResult = i < len(results)
			)
			switch op.Body.Type {
			case xdr.OperationTypePayment:
				po := op.Body.MustPaymentOp()
				r.Type, dst, asset, amt = "payment", po.Destination, po.Asset, po.Amount
			case xdr.OperationTypePathPaymentStrictReceive:
				po := op.Body.MustPathPaymentStrictReceiveOp()
				r.Type, dst, asset, amt = "path_payment_strict_receive", po.Destination, po.DestAsset, po.DestAmount
				srcAsset = &po.SendAsset
				if !haveResult {
					return nil, fmt.Errorf("transaction %s operation %d: no result", r.TransactionHash, i)
				}
				res := results[i].MustTr().MustPathPaymentStrictReceiveResult()
				srcAmt = res.SendAmount()
			case xdr.OperationTypePathPaymentStrictSend:
				po := op.Body.MustPathPaymentStrictSendOp()
				r.Type, dst, asset = "path_payment_strict_send", po.Destination, po.DestAsset
				srcAsset, srcAmt = &po.SendAsset, po.SendAmount
				if !haveResult {
					return nil, fmt.Errorf("transaction %s operation %d: no result", r.TransactionHash, i)
				}
				res := results[i].MustTr().MustPathPaymentStrictSendResult()
				amt = res.DestAmount()
			default:
				continue
			}
			r.From, r.FromMuxed = processor.AccountOf(src)
			r.To, r.ToMuxed = processor.AccountOf(dst)
			r.AssetType, r.AssetCode, r.AssetIssuer = assetOf(asset)
			r.Amount, r.AmountRaw = amount.String(amt), int64(amt)
			if srcAsset != nil {
				t, c, is := assetOf(*srcAsset)
				s, raw := amount.String(srcAmt), int64(srcAmt)
				r.SourceAssetType, r.SourceAssetCode, r.SourceAssetIssr = &t, c, is
				r.SourceAmount, r.SourceAmountRaw = &s, &raw
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func assetOf(a xdr.Asset) (typ string, code, issuer *string) {
	switch a.Type {
	case xdr.AssetTypeAssetTypeNative:
		return "native", nil, nil
	case xdr.AssetTypeAssetTypeCreditAlphanum4:
		typ = "credit_alphanum4"
	default:
		typ = "credit_alphanum12"
	}
	var t, c, is string
	if err := a.Extract(&t, &c, &is); err != nil {
		c, is = strings.TrimRight(a.GetCode(), "\x00"), a.GetIssuer()
	}
	return typ, &c, &is
}

func memoOf(m xdr.Memo) (string, *string) {
	var s string
	switch m.Type {
	case xdr.MemoTypeMemoText:
		s = m.MustText()
		return "text", &s
	case xdr.MemoTypeMemoId:
		s = strconv.FormatUint(uint64(m.MustId()), 10)
		return "id", &s
	case xdr.MemoTypeMemoHash:
		h := m.MustHash()
		s = hex.EncodeToString(h[:])
		return "hash", &s
	case xdr.MemoTypeMemoReturn:
		h := m.MustRetHash()
		s = hex.EncodeToString(h[:])
		return "return", &s
	}
	return "none", nil
}

// AppPayment is the flat payment record of upstream CDP's TransformToAppPayment. Unlike
// upstream (which swapped them), source_account_id is the payer and destination_account_id the
// payee. asset_code is "native" or CODE:ISSUER.
type AppPayment struct {
	Timestamp            string    `json:"timestamp"` // close time, unix seconds
	SourceAccountID      string    `json:"source_account_id"`
	DestinationAccountID string    `json:"destination_account_id"`
	AssetCode            string    `json:"asset_code"`
	Amount               string    `json:"amount"`
	Type                 string    `json:"type"`
	Memo                 *string   `json:"memo"`
	LedgerSequence       uint32    `json:"ledger_sequence"`
	Successful           bool      `json:"successful"`
	TransactionHash      string    `json:"transaction_hash"`
	TransactionIndex     int       `json:"transaction_index"`
	OperationID          int64     `json:"operation_id"`
	ClosedAt             time.Time `json:"closed_at"`

	key string
}

// RecordKind implements component.Record.
func (AppPayment) RecordKind() string { return "app_payments" }

// NaturalKey implements component.Record (the key of the payment it was made from).
func (r AppPayment) NaturalKey() string { return r.key }

type transformToAppPaymentConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	assetFilterConfig       `mapstructure:",squash"`
	Addresses               []string `mapstructure:"addresses"`
	MemoText                string   `mapstructure:"memo_text"`
}

// TransformToAppPayment turns PaymentRecords (from a FilterPayments before it) into flat
// AppPayment records. As the first processor of a chain (no input records: the host passes
// nil), it reads the ledger's payments itself, as upstream's does. Optional filters as
// upstream: min_amount, asset_code (and asset_issuer), addresses, memo_text.
type TransformToAppPayment struct {
	net    processor.NetID
	filter paymentFilter
	now    func() time.Time
	stats  *processor.Counters
}

// NewTransformToAppPayment is the TransformToAppPayment constructor.
func NewTransformToAppPayment(c *transformToAppPaymentConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("TransformToAppPayment", env)
	if err != nil {
		return nil, err
	}
	f, err := c.build()
	if err != nil {
		return nil, fmt.Errorf("TransformToAppPayment: %w", err)
	}
	for _, a := range c.Addresses {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strkey.IsValidEd25519PublicKey(a) && !strkey.IsValidMuxedAccountEd25519PublicKey(a) {
			return nil, fmt.Errorf("TransformToAppPayment: addresses: %q is not an account address", a)
		}
		if f.addresses == nil {
			f.addresses = map[string]bool{}
		}
		f.addresses[a] = true
	}
	if c.MemoText != "" {
		m := c.MemoText
		f.memo = &m
	}
	return &TransformToAppPayment{net: net, filter: f, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"payments_transformed", "payments_filtered", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *TransformToAppPayment) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: without input records (first in its chain) it
// reads every ledger fully decoded; after FilterPayments, that processor already declares it.
func (p *TransformToAppPayment) NeedsDecode() bool { return true }

// Prepare implements component.Preparer: the ledger's transactions (processor.Transactions)
// are read on the decode-ahead workers.
func (p *TransformToAppPayment) Prepare(l *ledger.Ledger) {
	_, _ = processor.Transactions(l, p.net.Passphrase)
}

// Process implements component.Processor.
func (p *TransformToAppPayment) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	var src []PaymentRecord
	if in == nil {
		all, err := ledgerPayments(l, p.net)
		if err != nil {
			return nil, fmt.Errorf("TransformToAppPayment: %w", err)
		}
		src = all
	} else {
		for _, r := range in {
			switch pr := r.(type) {
			case PaymentRecord:
				src = append(src, pr)
			case *PaymentRecord:
				src = append(src, *pr)
			}
		}
	}
	out := make([]component.Record, 0, len(src))
	for i := range src {
		r := &src[i]
		if !p.filter.match(r) {
			continue
		}
		out = append(out, AppPayment{
			Timestamp:            strconv.FormatInt(r.ClosedAt.Unix(), 10),
			SourceAccountID:      r.From,
			DestinationAccountID: r.To,
			AssetCode:            r.canonical(),
			Amount:               r.Amount,
			Type:                 r.Type,
			Memo:                 r.Memo,
			LedgerSequence:       r.LedgerSequence,
			Successful:           true,
			TransactionHash:      r.TransactionHash,
			TransactionIndex:     r.TransactionIndex,
			OperationID:          r.OperationID,
			ClosedAt:             r.ClosedAt,
			key:                  r.NaturalKey(),
		})
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["payments_transformed"] += float64(len(out))
		m["payments_filtered"] += float64(len(src) - len(out))
	})
	return out, nil
}
