package account

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// CreateAccountRecord is one successful create_account operation, with upstream CDP's
// CreateAccountOp field names (timestamp, funder, account, starting_balance, type) and the
// position of the operation.
type CreateAccountRecord struct {
	Timestamp        string    `json:"timestamp"` // close time, unix seconds
	Funder           string    `json:"funder"`    // G... (a muxed source resolved)
	FunderMuxed      *string   `json:"funder_muxed"`
	Account          string    `json:"account"`
	StartingBalance  string    `json:"starting_balance"` // lumens, 7 decimals
	Type             string    `json:"type"`             // create_account
	LedgerSequence   uint32    `json:"ledger_sequence"`
	ClosedAt         time.Time `json:"closed_at"`
	TransactionHash  string    `json:"transaction_hash"`
	TransactionIndex int       `json:"transaction_index"` // 1-based, apply order
	OperationIndex   int       `json:"operation_index"`   // 0-based
	OperationID      int64     `json:"operation_id"`

	network string
}

// RecordKind implements component.Record.
func (CreateAccountRecord) RecordKind() string { return "create_accounts" }

// NaturalKey implements component.Record: network, ledger, transaction and operation.
func (r CreateAccountRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.Itoa(r.OperationIndex))
}

type createAccountConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// CreateAccount (alias CreateAccountTransformer, the name upstream's pipeline_config_buffered
// file uses though upstream cannot load it) emits the ledger's successful create_account
// operations. It reads the transactions through the SDK's zero-copy transaction views
// (ingest.LedgerTransactionViewRange: results and envelopes paired by hash, the meta never
// decoded) and decodes only the envelopes of successful transactions. Its input records are
// ignored (as upstream's, it reads the ledger).
//
// Config: network | network_passphrase (or the pipeline's network).
//
// Differences from upstream, each a fix: upstream also emitted the create_account operations
// of failed transactions (no account was created) and read the funder only from the
// operation's own source (a panic when the operation has none): cdpd emits successful ones and
// falls back to the transaction's source.
type CreateAccount struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewCreateAccount is the CreateAccount constructor.
func NewCreateAccount(c *createAccountConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("CreateAccount", env)
	if err != nil {
		return nil, err
	}
	return &CreateAccount{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"accounts_created", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *CreateAccount) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor. The input records are ignored.
func (p *CreateAccount) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	out := []component.Record{}
	isCreate := func(t xdr.OperationType) bool { return t == xdr.OperationTypeCreateAccount }
	err := eachSuccessfulEnvelope(ctx, l, p.net, isCreate, func(tx ingest.LedgerTransactionView, env *xdr.TransactionEnvelope) error {
		out = p.operations(out, l, xdr.Hash(tx.Hash).HexString(), int(tx.ApplicationOrder), env)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("CreateAccount: %w", err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["accounts_created"] += float64(len(out))
	})
	return out, nil
}

// operations appends the create_account operations of one successful transaction (index is
// its 1-based apply order).
func (p *CreateAccount) operations(out []component.Record, l *ledger.Ledger, hash string, index int, env *xdr.TransactionEnvelope) []component.Record {
	for i, op := range env.Operations() {
		ca, ok := op.Body.GetCreateAccountOp()
		if !ok {
			continue
		}
		src := env.SourceAccount()
		if op.SourceAccount != nil {
			src = *op.SourceAccount
		}
		r := CreateAccountRecord{network: p.net.Name, Type: "create_account", LedgerSequence: l.Sequence(),
			ClosedAt: l.CloseTime(), Timestamp: strconv.FormatInt(l.CloseTime().Unix(), 10), TransactionHash: hash,
			TransactionIndex: index, Account: ca.Destination.Address(), StartingBalance: amount.String(ca.StartingBalance),
			OperationIndex: i, OperationID: processor.OperationID(l.Sequence(), index, i)}
		r.Funder, r.FunderMuxed = processor.AccountOf(src)
		out = append(out, r)
	}
	return out
}

// eachSuccessfulEnvelope reads the ledger's transactions through the SDK's zero-copy views and
// calls f, in apply order, with each successful transaction that has an operation whose type
// want accepts (any, when want is nil) and its decoded envelope (a copy: the decoder never aliases the view).
// Envelopes without such an operation are skipped on the view, never decoded.
func eachSuccessfulEnvelope(ctx context.Context, l *ledger.Ledger, net processor.NetID, want func(xdr.OperationType) bool,
	f func(tx ingest.LedgerTransactionView, env *xdr.TransactionEnvelope) error) error {
	txs, err := ingest.LedgerTransactionViewRange(l.View(), 0, 0, net.Passphrase)
	if err != nil {
		return fmt.Errorf("reading transactions of ledger %d: %w", l.Sequence(), err)
	}
	for _, tx := range txs {
		if !tx.Successful {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if want != nil {
			ok, err := hasOperation(tx.Envelope, want)
			if err != nil {
				return fmt.Errorf("ledger %d transaction %d: reading envelope: %w", l.Sequence(), tx.ApplicationOrder, err)
			}
			if !ok {
				continue
			}
		}
		var env xdr.TransactionEnvelope
		if err := xdr.SafeUnmarshal(tx.Envelope, &env); err != nil {
			return fmt.Errorf("ledger %d transaction %d: decoding envelope: %w", l.Sequence(), tx.ApplicationOrder, err)
		}
		if err := f(tx, &env); err != nil {
			return err
		}
	}
	return nil
}

// hasOperation says whether the raw envelope has an operation whose type want accepts, read
// on the view.
func hasOperation(raw []byte, want func(xdr.OperationType) bool) (found bool, err error) {
	err = processor.Try(func() {
		env := xdr.TransactionEnvelopeView(raw)
		check := func(op xdr.OperationView) {
			found = found || want(op.MustBody().MustType())
		}
		switch typ := env.MustType(); typ {
		case xdr.EnvelopeTypeEnvelopeTypeTxV0:
			for op := range env.MustV0().MustTx().MustOperations().MustIter() {
				check(op)
			}
		case xdr.EnvelopeTypeEnvelopeTypeTx:
			for op := range env.MustV1().MustTx().MustOperations().MustIter() {
				check(op)
			}
		case xdr.EnvelopeTypeEnvelopeTypeTxFeeBump:
			for op := range env.MustFeeBump().MustTx().MustInnerTx().MustV1().MustTx().MustOperations().MustIter() {
				check(op)
			}
		default:
			processor.Fail("unknown envelope type %d", typ)
		}
	})
	return found, err
}
