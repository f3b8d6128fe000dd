package wallet

import (
	"fmt"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Horizon's participants of one operation (stellar-horizon, transactionOperationWrapper's
// Participants), and the owners of ledger entry changes.

// operationParticipants returns the G addresses operation i takes part with: its source, the
// accounts it names, the sponsor of what it creates, and for invoke_host_function the owners
// of the entries it changed and the accounts of its Stellar Asset Contract events.
func (p *ParticipantExtractor) operationParticipants(tx *ingest.LedgerTransaction, i int) ([]string, error) {
	op := tx.Envelope.Operations()[i]
	out := []string{muxedAddress(opSource(tx, op))}
	changes, err := tx.GetOperationChanges(uint32(i))
	if err != nil {
		return nil, err
	}
	b := op.Body
	switch b.Type {
	case xdr.OperationTypeCreateAccount:
		out = append(out, address(b.MustCreateAccountOp().Destination))
	case xdr.OperationTypePayment:
		out = append(out, muxedAddress(b.MustPaymentOp().Destination))
	case xdr.OperationTypePathPaymentStrictReceive:
		out = append(out, muxedAddress(b.MustPathPaymentStrictReceiveOp().Destination))
	case xdr.OperationTypePathPaymentStrictSend:
		out = append(out, muxedAddress(b.MustPathPaymentStrictSendOp().Destination))
	case xdr.OperationTypeAllowTrust:
		out = append(out, address(b.MustAllowTrustOp().Trustor))
	case xdr.OperationTypeAccountMerge:
		out = append(out, muxedAddress(b.MustDestination()))
	case xdr.OperationTypeCreateClaimableBalance:
		for _, c := range b.MustCreateClaimableBalanceOp().Claimants {
			if v0, ok := c.GetV0(); ok {
				out = append(out, address(v0.Destination))
			}
		}
	case xdr.OperationTypeBeginSponsoringFutureReserves:
		out = append(out, address(b.MustBeginSponsoringFutureReservesOp().SponsoredId))
	case xdr.OperationTypeEndSponsoringFutureReserves:
		out = append(out, beginSponsor(tx, i)...)
	case xdr.OperationTypeRevokeSponsorship:
		r := b.MustRevokeSponsorshipOp()
		if k, ok := r.GetLedgerKey(); ok {
			out = append(out, keyOwner(k))
		} else if s, ok := r.GetSigner(); ok {
			out = append(out, address(s.AccountId)) // not the signer: any key can be one
		}
	case xdr.OperationTypeClawback:
		out = append(out, muxedAddress(b.MustClawbackOp().From))
	case xdr.OperationTypeSetTrustLineFlags:
		out = append(out, address(b.MustSetTrustLineFlagsOp().Trustor))
	case xdr.OperationTypeInvokeHostFunction:
		for _, ch := range changes {
			if ch.Post != nil {
				out = append(out, entryOwner(ch.Post.Data))
			} else if ch.Pre != nil {
				out = append(out, entryOwner(ch.Pre.Data))
			}
		}
		sac, err := p.sacAccounts(tx, i, op)
		if err != nil {
			return nil, err
		}
		out = append(out, sac...)
	}
	out = append(out, sponsor(op, changes))
	return out, nil
}

// beginSponsor is the source of the begin_sponsoring_future_reserves operation that opened the
// sandwich end_sponsoring operation i closes (none in a failed transaction, whose sandwich
// may be malformed).
func beginSponsor(tx *ingest.LedgerTransaction, i int) []string {
	if !tx.Result.Successful() {
		return nil
	}
	ops := tx.Envelope.Operations()
	sponsored := muxedAddress(opSource(tx, ops[i]))
	for j := i - 1; j >= 0; j-- {
		if b, ok := ops[j].Body.GetBeginSponsoringFutureReservesOp(); ok && address(b.SponsoredId) == sponsored {
			return []string{muxedAddress(opSource(tx, ops[j]))}
		}
	}
	return nil
}

// sponsor is the account sponsoring the signer a set_options operation adds, or else the first
// entry the operation created with a sponsor ("" if none).
func sponsor(op xdr.Operation, changes []ingest.Change) string {
	var signer string
	if s, ok := op.Body.GetSetOptionsOp(); ok && s.Signer != nil {
		signer = s.Signer.Key.Address()
	}
	for _, ch := range changes {
		if signer != "" && ch.Type == xdr.LedgerEntryTypeAccount && ch.Post != nil {
			post := ch.Post.Data.MustAccount()
			if sp, ok := post.SponsorPerSigner()[signer]; ok {
				before := ""
				if ch.Pre != nil {
					pre := ch.Pre.Data.MustAccount()
					if s, ok := pre.SponsorPerSigner()[signer]; ok {
						before = s.Address()
					}
				}
				if before != sp.Address() {
					return sp.Address()
				}
			}
		}
		if ch.Pre == nil && ch.Post != nil && ch.Post.SponsoringID() != nil {
			return ch.Post.SponsoringID().Address()
		}
	}
	return ""
}

// sacAccounts returns the G accounts of operation i's Stellar Asset Contract transfer, mint,
// burn and clawback events (read by the SDK's token_transfer processor).
func (p *ParticipantExtractor) sacAccounts(tx *ingest.LedgerTransaction, i int, op xdr.Operation) ([]string, error) {
	if !tx.Result.Successful() {
		return nil, nil
	}
	results, ok := tx.Result.OperationResults()
	if !ok || i >= len(results) {
		return nil, fmt.Errorf("no result for operation %d", i)
	}
	events, err := p.tokens.EventsFromOperation(*tx, uint32(i), op, results[i])
	if err != nil {
		return nil, fmt.Errorf("reading token events: %w", err)
	}
	var out []string
	for _, ev := range events {
		if ev.GetAsset() == nil {
			continue
		}
		for _, a := range []string{ev.GetTransfer().GetFrom(), ev.GetTransfer().GetTo(), ev.GetMint().GetTo(),
			ev.GetBurn().GetFrom(), ev.GetClawback().GetFrom()} {
			if strkey.IsValidEd25519PublicKey(a) {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// allChanges lists every group of ledger entry changes of the transaction: fees, the
// transaction's own changes, each operation's, and fee refunds.
func allChanges(tx *ingest.LedgerTransaction) []xdr.LedgerEntryChanges {
	out := []xdr.LedgerEntryChanges{tx.FeeChanges}
	m := tx.UnsafeMeta
	switch m.V {
	case 0:
		for _, op := range *m.Operations {
			out = append(out, op.Changes)
		}
	case 1:
		out = append(out, m.V1.TxChanges)
		for _, op := range m.V1.Operations {
			out = append(out, op.Changes)
		}
	case 2:
		out = append(out, m.V2.TxChangesBefore, m.V2.TxChangesAfter)
		for _, op := range m.V2.Operations {
			out = append(out, op.Changes)
		}
	case 3:
		out = append(out, m.V3.TxChangesBefore, m.V3.TxChangesAfter)
		for _, op := range m.V3.Operations {
			out = append(out, op.Changes)
		}
	case 4:
		out = append(out, m.V4.TxChangesBefore, m.V4.TxChangesAfter)
		for _, op := range m.V4.Operations {
			out = append(out, op.Changes)
		}
	}
	return append(out, tx.PostTxApplyFeeChanges)
}

// changeOwner is the account owning the entry a change is about ("" for entries no account
// owns: claimable balances, pools, contract data and code, TTLs).
func changeOwner(ch xdr.LedgerEntryChange) string {
	switch ch.Type {
	case xdr.LedgerEntryChangeTypeLedgerEntryRemoved:
		return keyOwner(*ch.Removed)
	case xdr.LedgerEntryChangeTypeLedgerEntryCreated:
		return entryOwner(ch.Created.Data)
	case xdr.LedgerEntryChangeTypeLedgerEntryUpdated:
		return entryOwner(ch.Updated.Data)
	case xdr.LedgerEntryChangeTypeLedgerEntryState:
		return entryOwner(ch.State.Data)
	case xdr.LedgerEntryChangeTypeLedgerEntryRestored:
		return entryOwner(ch.Restored.Data)
	}
	return ""
}

func entryOwner(d xdr.LedgerEntryData) string {
	switch d.Type {
	case xdr.LedgerEntryTypeAccount:
		return address(d.Account.AccountId)
	case xdr.LedgerEntryTypeTrustline:
		return address(d.TrustLine.AccountId)
	case xdr.LedgerEntryTypeOffer:
		return address(d.Offer.SellerId)
	case xdr.LedgerEntryTypeData:
		return address(d.Data.AccountId)
	}
	return ""
}

func keyOwner(k xdr.LedgerKey) string {
	switch k.Type {
	case xdr.LedgerEntryTypeAccount:
		return address(k.Account.AccountId)
	case xdr.LedgerEntryTypeTrustline:
		return address(k.TrustLine.AccountId)
	case xdr.LedgerEntryTypeOffer:
		return address(k.Offer.SellerId)
	case xdr.LedgerEntryTypeData:
		return address(k.Data.AccountId)
	}
	return ""
}
