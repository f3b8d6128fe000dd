package wallet

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/processors/token_transfer"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// ParticipantRecord is the accounts one transaction touches (upstream's ParticipantOutput),
// with the roles upstream's WalletBackendPostgreSQL consumer stores.
type ParticipantRecord struct {
	LedgerSequence      uint32   `json:"ledger_sequence"`
	TransactionHash     string   `json:"transaction_hash"`
	TransactionIndex    int32    `json:"transaction_index"` // 1-based, apply order
	Timestamp           int64    `json:"timestamp"`         // the ledger's close time, unix seconds
	Successful          bool     `json:"successful"`
	Participants        []string `json:"participants"`         // every account the transaction touches, sorted
	SourceAccounts      []string `json:"source_accounts"`      // transaction, fee-bump and operation sources; clawed-back accounts
	DestinationAccounts []string `json:"destination_accounts"` // accounts paid, created, merged into, sponsored, or claiming
	SignerAccounts      []string `json:"signer_accounts"`      // account keys added, changed or removed as signers
	TrustlineAccounts   []string `json:"trustline_accounts"`   // accounts whose trustline is changed or (de)authorized
	OfferAccounts       []string `json:"offer_accounts"`       // sources of offer operations
	ContractAccounts    []string `json:"contract_accounts"`    // contracts invoked (C addresses)

	network string
}

// RecordKind implements component.Record.
func (ParticipantRecord) RecordKind() string { return "transaction_participants" }

// NaturalKey implements component.Record: network, ledger and transaction hash.
func (r ParticipantRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash)
}

type participantConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// ParticipantExtractor emits one ParticipantRecord per transaction of the ledger, successful
// or failed (Horizon records the participants of failed transactions too), read from the SDK's
// LedgerTransactionReader over the ledger's shared full decode.
//
// participants follows Horizon's definition (stellar-horizon's ingest processors,
// ParticipantsForTransaction and each operation's Participants): the transaction's source and
// fee-bump account; each operation's source and the accounts it names (destinations, trustors,
// claimants, the sponsored account, the sponsor a begin_sponsoring sandwich or the operation's
// new entries name, a revoked entry's owner, a clawback's holder; for invoke_host_function the
// owners of the entries it changed and the accounts of its Stellar Asset Contract events);
// and the owner of every account, trustline, offer and data entry the transaction changed
// (fees, transaction and operation changes). Horizon means to add the changed accounts too
// (participantsForMeta) but reads only version-0 meta, so for today's ledgers it adds only
// those of its fee changes; here every change counts, so the counterparties of trades (whose
// offers, balances or trustlines changed) are participants. Failed transactions change only
// fees and sequence numbers.
//
// The role lists keep upstream's meaning (see the field comments); upstream's role lists miss
// allow_trust's siblings (set_trust_line_flags) and leave contract_accounts empty; both are
// filled here.
//
// Config: network | network_passphrase. Chain: an enricher (see the package doc). Keys:
// network, ledger, transaction hash.
//
// Upstream differences: upstream skips failed transactions and, like Horizon's code, misses
// accounts whose trustlines or offers changed; it skips transactions it cannot read.
type ParticipantExtractor struct {
	net    processor.NetID
	tokens *token_transfer.EventsProcessor
	now    func() time.Time
	stats  *processor.Counters
}

// NewParticipantExtractor is the ParticipantExtractor constructor.
func NewParticipantExtractor(c *participantConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("ParticipantExtractor", env)
	if err != nil {
		return nil, err
	}
	return &ParticipantExtractor{net: net, tokens: token_transfer.NewEventsProcessor(net.Passphrase), now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "last_ledger", "last_processed_time", "transactions_found", "participants_found")}, nil
}

// Stats implements component.StatsReporter.
func (p *ParticipantExtractor) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *ParticipantExtractor) NeedsDecode() bool { return true }

// Prepare implements component.Preparer: the ledger's transactions (processor.Transactions)
// are read on the decode-ahead workers.
func (p *ParticipantExtractor) Prepare(l *ledger.Ledger) {
	_, _ = processor.Transactions(l, p.net.Passphrase)
}

// Process implements component.Processor.
func (p *ParticipantExtractor) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	var own []component.Record
	found := 0
	err := processor.EachTransaction(l, p.net.Passphrase, func(tx *ingest.LedgerTransaction) error {
		r, err := p.record(l, tx)
		if err != nil {
			return fmt.Errorf("transaction %s: %w", tx.Hash.HexString(), err)
		}
		found += len(r.Participants)
		own = append(own, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ParticipantExtractor: ledger %d: %w", l.Sequence(), err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["transactions_found"] += float64(len(own))
		m["participants_found"] += float64(found)
	})
	return processor.Enrich(in, own), nil
}

// roles collects accounts in first-seen order without repeats.
type roles struct {
	list []string
	seen map[string]bool
}

func (r *roles) add(addresses ...string) {
	for _, a := range addresses {
		if a == "" || r.seen[a] {
			continue
		}
		if r.seen == nil {
			r.seen = map[string]bool{}
		}
		r.seen[a] = true
		r.list = append(r.list, a)
	}
}

func (r *roles) out() []string {
	if r.list == nil {
		return []string{}
	}
	return r.list
}

func address(id xdr.AccountId) string { return id.Address() }

func muxedAddress(m xdr.MuxedAccount) string { return address(m.ToAccountId()) }

func (p *ParticipantExtractor) record(l *ledger.Ledger, tx *ingest.LedgerTransaction) (ParticipantRecord, error) {
	var all, source, dest, signers, trust, offers, contracts roles
	source.add(muxedAddress(tx.Envelope.SourceAccount()))
	if tx.Envelope.IsFeeBump() {
		source.add(muxedAddress(tx.Envelope.FeeBumpAccount()))
	}
	all.add(source.list...)
	ops := tx.Envelope.Operations()
	for i := range ops {
		direct, err := p.operationParticipants(tx, i)
		if err != nil {
			return ParticipantRecord{}, fmt.Errorf("operation %d: %w", i, err)
		}
		all.add(direct...)
		opRoles(tx, i, &source, &dest, &signers, &trust, &offers, &contracts)
	}
	for _, changes := range allChanges(tx) {
		for _, ch := range changes {
			all.add(changeOwner(ch))
		}
	}
	participants := append([]string(nil), all.list...)
	sort.Strings(participants)
	return ParticipantRecord{
		LedgerSequence:      l.Sequence(),
		TransactionHash:     tx.Hash.HexString(),
		TransactionIndex:    int32(tx.Index),
		Timestamp:           l.CloseTime().Unix(),
		Successful:          tx.Result.Successful(),
		Participants:        participants,
		SourceAccounts:      source.out(),
		DestinationAccounts: dest.out(),
		SignerAccounts:      signers.out(),
		TrustlineAccounts:   trust.out(),
		OfferAccounts:       offers.out(),
		ContractAccounts:    contracts.out(),
		network:             p.net.Name,
	}, nil
}

// opSource is the operation's source account, else the transaction's.
func opSource(tx *ingest.LedgerTransaction, op xdr.Operation) xdr.MuxedAccount {
	if op.SourceAccount != nil {
		return *op.SourceAccount
	}
	return tx.Envelope.SourceAccount()
}

// opRoles adds the accounts of operation i to upstream's role lists.
func opRoles(tx *ingest.LedgerTransaction, i int, source, dest, signers, trust, offers, contracts *roles) {
	op := tx.Envelope.Operations()[i]
	src := muxedAddress(opSource(tx, op))
	source.add(src)
	b := op.Body
	switch b.Type {
	case xdr.OperationTypeCreateAccount:
		dest.add(address(b.MustCreateAccountOp().Destination))
	case xdr.OperationTypePayment:
		dest.add(muxedAddress(b.MustPaymentOp().Destination))
	case xdr.OperationTypePathPaymentStrictReceive:
		dest.add(muxedAddress(b.MustPathPaymentStrictReceiveOp().Destination))
	case xdr.OperationTypePathPaymentStrictSend:
		dest.add(muxedAddress(b.MustPathPaymentStrictSendOp().Destination))
	case xdr.OperationTypeAccountMerge:
		dest.add(muxedAddress(b.MustDestination()))
	case xdr.OperationTypeCreateClaimableBalance:
		for _, c := range b.MustCreateClaimableBalanceOp().Claimants {
			if v0, ok := c.GetV0(); ok {
				dest.add(address(v0.Destination))
			}
		}
	case xdr.OperationTypeClaimClaimableBalance:
		dest.add(src) // the claimant receives the balance
	case xdr.OperationTypeBeginSponsoringFutureReserves:
		dest.add(address(b.MustBeginSponsoringFutureReservesOp().SponsoredId))
	case xdr.OperationTypeManageSellOffer, xdr.OperationTypeManageBuyOffer, xdr.OperationTypeCreatePassiveSellOffer:
		offers.add(src)
	case xdr.OperationTypeSetOptions:
		if s := b.MustSetOptionsOp().Signer; s != nil && s.Key.Type == xdr.SignerKeyTypeSignerKeyTypeEd25519 {
			signers.add(s.Key.Address())
		}
	case xdr.OperationTypeChangeTrust:
		trust.add(src)
	case xdr.OperationTypeAllowTrust:
		trust.add(address(b.MustAllowTrustOp().Trustor))
	case xdr.OperationTypeSetTrustLineFlags:
		trust.add(address(b.MustSetTrustLineFlagsOp().Trustor))
	case xdr.OperationTypeClawback:
		source.add(muxedAddress(b.MustClawbackOp().From))
	case xdr.OperationTypeInvokeHostFunction:
		if args, ok := b.MustInvokeHostFunctionOp().HostFunction.GetInvokeContract(); ok {
			if c, ok := args.ContractAddress.GetContractId(); ok {
				contracts.add(strkey.MustEncode(strkey.VersionByteContract, c[:]))
			}
		}
	}
}
