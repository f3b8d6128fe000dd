package raw

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// eachTransaction drains the SDK's transaction reader over the shared decoded ledger (read
// only) and calls f for each transaction in apply order; it stops at f's first error or when
// ctx ends.
func eachTransaction(ctx context.Context, passphrase string, lcm *xdr.LedgerCloseMeta, f func(*ingest.LedgerTransaction) error) error {
	rd, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(passphrase, *lcm)
	if err != nil {
		return fmt.Errorf("reading transactions: %w", err)
	}
	defer rd.Close()
	for {
		tx, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading transactions: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(&tx); err != nil {
			return err
		}
	}
}

// eachChange drains the SDK's ledger change reader over the shared decoded ledger (read only)
// and calls f for each change in the reader's order; it stops at f's first error or when ctx
// ends.
func eachChange(ctx context.Context, passphrase string, lcm *xdr.LedgerCloseMeta, f func(ingest.Change) error) error {
	rd, err := ingest.NewLedgerChangeReaderFromLedgerCloseMeta(passphrase, *lcm)
	if err != nil {
		return fmt.Errorf("reading changes: %w", err)
	}
	defer rd.Close()
	for {
		ch, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading changes: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(ch); err != nil {
			return err
		}
	}
}
