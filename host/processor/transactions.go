package processor

import (
	"fmt"
	"io"

	"github.com/stellar/go-stellar-sdk/ingest"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// EachTransaction calls f for every transaction of the ledger in apply order, read by the SDK's
// LedgerTransactionReader from the ledger's shared full decode (l.Decoded). The transaction
// points into that shared value: f must not modify it nor keep it after returning.
func EachTransaction(l *ledger.Ledger, passphrase string, f func(tx *ingest.LedgerTransaction) error) error {
	lcm, err := l.Decoded()
	if err != nil {
		return err
	}
	rd, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(passphrase, *lcm)
	if err != nil {
		return fmt.Errorf("reading the transactions of ledger %d: %w", l.Sequence(), err)
	}
	defer rd.Close()
	for {
		tx, err := rd.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the transactions of ledger %d: %w", l.Sequence(), err)
		}
		if err := f(&tx); err != nil {
			return err
		}
	}
}

// Enrich is what an enricher returns (a processor that, like upstream's wallet-backend chain,
// forwards what it received and adds its own output): the records of the processor before it
// followed by its own, in a new slice (in is never appended to in place).
func Enrich(in, own []component.Record) []component.Record {
	out := make([]component.Record, 0, len(in)+len(own))
	return append(append(out, in...), own...)
}
