// Package account owns the processors of accounts and trustlines: account entry changes
// (ProcessAccountDataFull, alias AccountData) and trustline entry changes
// (TransformToAppTrustline), both read through the SDK's ledger change reader; account
// creations (CreateAccount), the operations of transactions involving an account
// (AccountTransaction) and the assets accounts trust, pay in or have their trustline flags set
// for (TransformToTickerAsset), read from the transactions.
package account

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// changeNames are the change_type values (xdr.LedgerEntryChangeType names, as ContractData
// spells them).
var changeNames = map[xdr.LedgerEntryChangeType]string{
	xdr.LedgerEntryChangeTypeLedgerEntryCreated:  "created",
	xdr.LedgerEntryChangeTypeLedgerEntryUpdated:  "updated",
	xdr.LedgerEntryChangeTypeLedgerEntryRemoved:  "removed",
	xdr.LedgerEntryChangeTypeLedgerEntryRestored: "restored",
}

// changeContext is where a change came from: its transaction and operation when it has them.
type changeContext struct {
	index       int     // position among the ledger's changes of this entry type (apply order)
	changeType  string  // created|updated|removed|restored
	txHash      *string // null for upgrade changes
	txIndex     *int    // 1-based
	operationID *int64  // null unless an operation made the change
	opType      *xdr.OperationType
}

// eachChange drains the SDK's ledger change reader over the shared decoded ledger (fee
// changes, transaction and operation meta changes, post-apply fee refunds, upgrades — the
// reader's order) and calls f for every change of the entry type typ. The entry handed to f
// is the one after the change, or before it for a removal. Nothing reachable from the change
// may be kept after f returns.
func eachChange(ctx context.Context, l *ledger.Ledger, net processor.NetID, typ xdr.LedgerEntryType,
	f func(ch ingest.Change, entry *xdr.LedgerEntry, c changeContext) error) error {
	lcm, err := l.Decoded()
	if err != nil {
		return err
	}
	rd, err := ingest.NewLedgerChangeReaderFromLedgerCloseMeta(net.Passphrase, *lcm)
	if err != nil {
		return fmt.Errorf("reading changes of ledger %d: %w", l.Sequence(), err)
	}
	defer rd.Close()
	idx := 0
	for {
		ch, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading changes of ledger %d: %w", l.Sequence(), err)
		}
		if ch.Type != typ {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c := changeContext{index: idx, changeType: changeNames[ch.ChangeType]}
		idx++
		if c.changeType == "" {
			return fmt.Errorf("ledger %d change %d: unexpected change type %v", l.Sequence(), c.index, ch.ChangeType)
		}
		entry := ch.Post
		if ch.ChangeType == xdr.LedgerEntryChangeTypeLedgerEntryRemoved {
			entry = ch.Pre
		}
		if entry == nil || entry.Data.Type != typ {
			return fmt.Errorf("ledger %d change %d: %s change without its %v entry", l.Sequence(), c.index, c.changeType, typ)
		}
		if tx := ch.Transaction; tx != nil {
			h, i := tx.Hash.HexString(), int(tx.Index)
			c.txHash, c.txIndex = &h, &i
			if ch.Reason == ingest.LedgerEntryChangeReasonOperation {
				id := processor.OperationID(l.Sequence(), i, int(ch.OperationIndex))
				c.operationID = &id
				if op, ok := tx.GetOperation(ch.OperationIndex); ok {
					t := op.Body.Type
					c.opType = &t
				}
			}
		}
		if err := f(ch, entry, c); err != nil {
			return fmt.Errorf("ledger %d change %d: %w", l.Sequence(), c.index, err)
		}
	}
}

// key is the natural key of a change record: network, ledger, change position, entry.
func key(net string, seq uint32, index int, entry string) string {
	return processor.Key(net, seq, strconv.Itoa(index), entry)
}
