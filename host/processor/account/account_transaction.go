package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// AccountTransactionRecord is one operation of a transaction that involves the account,
// with upstream CDP's AccountTransaction field names and the operation's position.
type AccountTransactionRecord struct {
	Timestamp         time.Time       `json:"timestamp"` // ledger close time
	TransactionHash   string          `json:"transaction_hash"`
	LedgerSequence    uint32          `json:"ledger_sequence"`
	AccountID         string          `json:"account_id"` // the operation's source (G..., a muxed source resolved)
	Type              string          `json:"type"`       // stellar|soroban
	Operation         string          `json:"operation"`  // Horizon's type name; invoke_contract|create_contract|upload_contract_wasm for host functions
	Amount            *string         `json:"amount"`     // the operation's exact amount, 7 decimals
	AssetCode         *string         `json:"asset_code"` // that amount's asset: "native" or CODE:ISSUER; liquidity_pool_shares
	CounterpartyID    *string         `json:"counterparty_id"`
	TransactionStatus bool            `json:"transaction_status"` // the transaction succeeded
	ContractID        *string         `json:"contract_id"`
	FunctionName      *string         `json:"function_name"`
	ContractEvents    json.RawMessage `json:"contract_events"`   // the operation's contract events (invoke_host_function), or null
	Parameters        json.RawMessage `json:"parameters"`        // manage_data and create_contract details, or null
	TransactionIndex  int             `json:"transaction_index"` // 1-based, apply order
	OperationIndex    int             `json:"operation_index"`   // 0-based
	OperationID       int64           `json:"operation_id"`
	ClosedAt          time.Time       `json:"closed_at"`

	network string
}

// RecordKind implements component.Record.
func (AccountTransactionRecord) RecordKind() string { return "account_transactions" }

// NaturalKey implements component.Record: network, ledger, transaction and operation.
func (r AccountTransactionRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.Itoa(r.OperationIndex))
}

type accountTransactionConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	Account                 string `mapstructure:"account"`
	Year                    int    `mapstructure:"year"`
}

// AccountTransaction emits the operations of the ledger's transactions (successful and failed,
// transaction_status tells) that involve the account: the account is the transaction's source,
// the fee-bump fee source, an operation's source, or an operation's counterparty (the
// destination of payments, path payments, create_account and account_merge; the trustor of
// allow_trust and set_trust_line_flags; the holder of a clawback). Every operation of such a
// transaction is emitted, so the transaction is whole. It reads the SDK's transaction reader
// (ingest.LedgerTransactionReader) on the shared decoded ledger and the operations' contract
// events (LedgerTransaction.GetContractEventsForOperation). Its input records are ignored.
//
// Config: network | network_passphrase; account (a G... address; without it every
// transaction's operations are emitted); year (only ledgers that closed in that UTC year).
//
// Differences from upstream, each a fix: upstream emitted one row per transaction whose
// operation fields were overwritten by each operation in turn (only the last survived), so
// cdpd emits one row per operation. Upstream's involvement test missed path payment
// destinations and fee-bump sources; its path_payment_strict_send row paired the send amount
// with the destination asset (cdpd pairs each operation's exact amount with its asset);
// create_account used "XLM" where payments used "native" (cdpd: "native"); allow_trust's
// asset was a Go debug string; other operation names were XDR enum names (cdpd: Horizon's
// names); contract_events held the transaction's diagnostic events as Go structs (cdpd: the
// operation's contract events, topics and data as JSON).
type AccountTransaction struct {
	net     processor.NetID
	account string
	year    int
	now     func() time.Time
	stats   *processor.Counters
}

// NewAccountTransaction is the AccountTransaction constructor.
func NewAccountTransaction(c *accountTransactionConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("AccountTransaction", env)
	if err != nil {
		return nil, err
	}
	acct := strings.TrimSpace(c.Account)
	if acct != "" && !strkey.IsValidEd25519PublicKey(acct) {
		return nil, fmt.Errorf("AccountTransaction: account %q is not an account id (G...)", acct)
	}
	if c.Year < 0 {
		return nil, fmt.Errorf("AccountTransaction: year %d is negative", c.Year)
	}
	return &AccountTransaction{net: net, account: acct, year: c.Year, now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "transactions_found", "operations_found",
			"ledgers_skipped", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *AccountTransaction) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *AccountTransaction) NeedsDecode() bool { return true }

// Process implements component.Processor. The input records are ignored.
func (p *AccountTransaction) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	out := []component.Record{}
	if p.year != 0 && l.CloseTime().UTC().Year() != p.year {
		p.stats.Update(func(m map[string]float64) {
			processor.LedgerDone(m, l.Sequence(), p.now())
			m["ledgers_skipped"]++
		})
		return out, nil
	}
	ntx, err := p.read(ctx, l, &out)
	if err != nil {
		return nil, fmt.Errorf("AccountTransaction: %w", err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["transactions_found"] += float64(ntx)
		m["operations_found"] += float64(len(out))
	})
	return out, nil
}

func (p *AccountTransaction) read(ctx context.Context, l *ledger.Ledger, out *[]component.Record) (int, error) {
	lcm, err := l.Decoded()
	if err != nil {
		return 0, err
	}
	rd, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(p.net.Passphrase, *lcm)
	if err != nil {
		return 0, fmt.Errorf("reading transactions of ledger %d: %w", l.Sequence(), err)
	}
	defer rd.Close()
	ntx := 0
	for {
		tx, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return ntx, nil
		}
		if err != nil {
			return 0, fmt.Errorf("reading transactions of ledger %d: %w", l.Sequence(), err)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		recs, err := p.transaction(&tx, l)
		if err != nil {
			return 0, fmt.Errorf("ledger %d transaction %s: %w", l.Sequence(), tx.Hash.HexString(), err)
		}
		if recs != nil {
			ntx++
			for _, r := range recs {
				*out = append(*out, r)
			}
		}
	}
}

// transaction returns the records of one transaction, or nil when it does not involve the
// account.
func (p *AccountTransaction) transaction(tx *ingest.LedgerTransaction, l *ledger.Ledger) ([]AccountTransactionRecord, error) {
	txSrc, _ := processor.AccountOf(tx.Envelope.SourceAccount())
	feeSrc, _ := processor.AccountOf(tx.Envelope.FeeAccount())
	involved := p.account == "" || p.account == txSrc || p.account == feeSrc
	ops := tx.Envelope.Operations()
	recs := make([]AccountTransactionRecord, len(ops))
	for i, op := range ops {
		r := &recs[i]
		*r = AccountTransactionRecord{Timestamp: l.CloseTime(), ClosedAt: l.CloseTime(), LedgerSequence: l.Sequence(),
			TransactionHash: tx.Hash.HexString(), TransactionIndex: int(tx.Index), TransactionStatus: tx.Result.Successful(),
			OperationIndex: i, OperationID: processor.OperationID(l.Sequence(), int(tx.Index), i), AccountID: txSrc,
			Type: "stellar", network: p.net.Name}
		if op.SourceAccount != nil {
			r.AccountID, _ = processor.AccountOf(*op.SourceAccount)
		}
		if err := describe(r, op, tx, uint32(i)); err != nil { //nolint:gosec // op index fits
			return nil, fmt.Errorf("operation %d: %w", i, err)
		}
		involved = involved || r.AccountID == p.account || (r.CounterpartyID != nil && *r.CounterpartyID == p.account)
	}
	if !involved {
		return nil, nil
	}
	return recs, nil
}

// opName is Horizon's name of an operation type: the XDR enum name in snake case
// (OperationTypeSetTrustLineFlags -> set_trust_line_flags).
func opName(t xdr.OperationType) (string, error) {
	s := t.String()
	if !t.ValidEnum(int32(t)) || s == "" {
		return "", fmt.Errorf("unknown operation type %d", t)
	}
	s = strings.TrimPrefix(s, "OperationType")
	var b strings.Builder
	for i, c := range s {
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String(), nil
}

// describe fills the operation's type, amount, asset, counterparty and Soroban details.
func describe(r *AccountTransactionRecord, op xdr.Operation, tx *ingest.LedgerTransaction, i uint32) error {
	var err error
	if r.Operation, err = opName(op.Body.Type); err != nil {
		return err
	}
	set := func(amt xdr.Int64, asset *xdr.Asset, counterparty *xdr.MuxedAccount) {
		if asset != nil {
			a, c := amount.String(amt), asset.StringCanonical()
			r.Amount, r.AssetCode = &a, &c
		}
		if counterparty != nil {
			g, _ := processor.AccountOf(*counterparty)
			r.CounterpartyID = &g
		}
	}
	native := xdr.MustNewNativeAsset()
	b := op.Body
	switch b.Type {
	case xdr.OperationTypePayment:
		set(b.PaymentOp.Amount, &b.PaymentOp.Asset, &b.PaymentOp.Destination)
	case xdr.OperationTypeCreateAccount:
		dst := b.CreateAccountOp.Destination.ToMuxedAccount()
		set(b.CreateAccountOp.StartingBalance, &native, &dst)
	case xdr.OperationTypePathPaymentStrictReceive:
		o := b.PathPaymentStrictReceiveOp
		set(o.DestAmount, &o.DestAsset, &o.Destination)
	case xdr.OperationTypePathPaymentStrictSend:
		o := b.PathPaymentStrictSendOp
		set(o.SendAmount, &o.SendAsset, &o.Destination)
	case xdr.OperationTypeManageSellOffer:
		set(b.ManageSellOfferOp.Amount, &b.ManageSellOfferOp.Selling, nil)
	case xdr.OperationTypeManageBuyOffer:
		set(b.ManageBuyOfferOp.BuyAmount, &b.ManageBuyOfferOp.Buying, nil)
	case xdr.OperationTypeCreatePassiveSellOffer:
		set(b.CreatePassiveSellOfferOp.Amount, &b.CreatePassiveSellOfferOp.Selling, nil)
	case xdr.OperationTypeChangeTrust:
		o := b.ChangeTrustOp
		a, c := amount.String(o.Limit), "liquidity_pool_shares"
		if o.Line.Type != xdr.AssetTypeAssetTypePoolShare {
			c = o.Line.ToAsset().StringCanonical()
		}
		r.Amount, r.AssetCode = &a, &c
	case xdr.OperationTypeAllowTrust:
		o := b.AllowTrustOp
		a := o.Asset.ToAsset(xdr.MustAddress(r.AccountID)) // the issuer is the operation's source
		c := a.StringCanonical()
		g := o.Trustor.Address()
		r.AssetCode, r.CounterpartyID = &c, &g
	case xdr.OperationTypeSetTrustLineFlags:
		o := b.SetTrustLineFlagsOp
		c, g := o.Asset.StringCanonical(), o.Trustor.Address()
		r.AssetCode, r.CounterpartyID = &c, &g
	case xdr.OperationTypeClawback:
		o := b.ClawbackOp
		set(o.Amount, &o.Asset, &o.From)
	case xdr.OperationTypeAccountMerge:
		set(0, nil, b.Destination)
	case xdr.OperationTypeManageData:
		raw, err := json.Marshal(map[string]any{"data_name": string(b.ManageDataOp.DataName), "has_value": b.ManageDataOp.DataValue != nil})
		if err != nil {
			return err
		}
		r.Parameters = raw
	case xdr.OperationTypeInvokeHostFunction:
		return describeHostFunction(r, b.MustInvokeHostFunctionOp(), tx, i)
	case xdr.OperationTypeExtendFootprintTtl, xdr.OperationTypeRestoreFootprint:
		r.Type = "soroban"
	}
	return nil
}

func describeHostFunction(r *AccountTransactionRecord, hf xdr.InvokeHostFunctionOp, tx *ingest.LedgerTransaction, i uint32) error {
	r.Type, r.CounterpartyID = "soroban", &r.AccountID // upstream: the invoking account
	params := map[string]any{}
	switch f := hf.HostFunction; f.Type {
	case xdr.HostFunctionTypeHostFunctionTypeInvokeContract:
		r.Operation = "invoke_contract"
		ic := f.MustInvokeContract()
		id, err := ic.ContractAddress.String()
		if err != nil {
			return fmt.Errorf("contract address: %w", err)
		}
		fn := string(ic.FunctionName)
		r.ContractID, r.FunctionName = &id, &fn
	case xdr.HostFunctionTypeHostFunctionTypeCreateContract:
		r.Operation, params["executable_type"] = "create_contract", f.MustCreateContract().Executable.Type.String()
	case xdr.HostFunctionTypeHostFunctionTypeCreateContractV2:
		r.Operation, params["executable_type"] = "create_contract", f.MustCreateContractV2().Executable.Type.String()
	case xdr.HostFunctionTypeHostFunctionTypeUploadContractWasm:
		r.Operation = "upload_contract_wasm"
	}
	if len(params) > 0 {
		raw, err := json.Marshal(params)
		if err != nil {
			return err
		}
		r.Parameters = raw
	}
	evs, err := tx.GetContractEventsForOperation(i)
	if err != nil {
		return fmt.Errorf("contract events: %w", err)
	}
	if len(evs) == 0 {
		return nil
	}
	raw, err := eventsJSON(evs)
	if err != nil {
		return fmt.Errorf("contract events: %w", err)
	}
	r.ContractEvents = raw
	return nil
}

type eventJSON struct {
	Type       string          `json:"type"`
	ContractID *string         `json:"contract_id"`
	Topics     json.RawMessage `json:"topics"`
	Data       json.RawMessage `json:"data"`
}

// eventsJSON renders contract events as a JSON array of {type, contract_id, topics, data}.
func eventsJSON(evs []xdr.ContractEvent) (json.RawMessage, error) {
	out := make([]eventJSON, 0, len(evs))
	for _, ev := range evs {
		e := eventJSON{Type: strings.ToLower(strings.TrimPrefix(ev.Type.String(), "ContractEventType"))}
		if ev.ContractId != nil {
			s, err := strkey.Encode(strkey.VersionByteContract, ev.ContractId[:])
			if err != nil {
				return nil, err
			}
			e.ContractID = &s
		}
		body, ok := ev.Body.GetV0()
		if !ok {
			return nil, fmt.Errorf("event body version %d", ev.Body.V)
		}
		var err error
		if e.Topics, err = processor.ScValsJSON(body.Topics); err != nil {
			return nil, err
		}
		if e.Data, err = processor.ScValJSON(body.Data); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return json.Marshal(out)
}
