package processor

import (
	"fmt"
	"io"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// EachTransaction calls f for every transaction of the ledger in apply order (Transactions).
// The transaction points into values shared by every pipeline holding the ledger: f must not
// modify it nor keep it after returning.
func EachTransaction(l *ledger.Ledger, passphrase string, f func(tx *ingest.LedgerTransaction) error) error {
	txs, err := Transactions(l, passphrase)
	if err != nil {
		return err
	}
	for i := range txs {
		if err := f(&txs[i]); err != nil {
			return err
		}
	}
	return nil
}

// Transactions are the transactions of the ledger in apply order, read by the SDK's
// LedgerTransactionReader from the ledger's shared full decode (l.Decoded), once per ledger
// and network however many pipelines ask (ledger.Derive: the reader hashes every
// transaction). Read only.
func Transactions(l *ledger.Ledger, passphrase string) ([]ingest.LedgerTransaction, error) {
	return ledger.Derive(l, "ingest.LedgerTransactionReader:"+passphrase, func(lcm *xdr.LedgerCloseMeta) ([]ingest.LedgerTransaction, error) {
		rd, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(passphrase, *lcm)
		if err != nil {
			return nil, fmt.Errorf("reading the transactions of ledger %d: %w", l.Sequence(), err)
		}
		defer rd.Close()
		var txs []ingest.LedgerTransaction
		for {
			tx, err := rd.Read()
			if err == io.EOF {
				return txs, nil
			}
			if err != nil {
				return nil, fmt.Errorf("reading the transactions of ledger %d: %w", l.Sequence(), err)
			}
			txs = append(txs, tx)
		}
	})
}

// Enrich is what an enricher returns (a processor that, like upstream's wallet-backend chain,
// forwards what it received and adds its own output): the records of the processor before it
// followed by its own, in a new slice (in is never appended to in place).
func Enrich(in, own []component.Record) []component.Record {
	out := make([]component.Record, 0, len(in)+len(own))
	return append(append(out, in...), own...)
}
