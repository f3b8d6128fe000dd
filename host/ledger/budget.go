package ledger

import (
	"context"
	"sync"
)

// Budget is the daemon's one byte budget for ledgers in flight (cdpd --ledger-memory): the raw
// bytes of every pooled ledger from the copy that made it until its last Release, and the
// estimated size of its decoded value (DecodedEstimate) from the decode until then.
//
// Each reader of ledgers (a shared reader, a source reading on its own) holds an Account and
// acquires a ledger's bytes before it copies the ledger (Account.Acquire, which blocks: back
// pressure instead of growth); CopyCharged charges them and the decode adds its estimate
// without waiting (a decode must never wait for memory that only its own pipeline can free).
// The budget is shared fairly: while several accounts hold ledgers, each may hold at most the
// limit divided by their number, and never more ledgers than its own cap (a source's
// buffer_size). An account
// that holds nothing may always take one ledger, so a ledger larger than a share still flows
// and no reader waits for memory that nobody holds. The budget may thus be exceeded by at most
// one ledger per account plus the decodes in flight.
//
// A nil *Budget is no budget: its accounts never wait.
type Budget struct {
	limit int64

	mu       sync.Mutex
	used     int64
	peak     int64
	waits    int64                 // Acquire calls that had to wait
	accounts map[*Account]struct{} // open accounts
	changed  chan struct{}         // closed (and replaced) when memory is refunded
}

// NewBudget returns a budget of limit bytes (<= 0: unlimited, only counted).
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, accounts: map[*Account]struct{}{}, changed: make(chan struct{})}
}

// Account is one reader's share of a Budget. Its methods are safe for concurrent use.
type Account struct {
	b   *Budget
	cap int64 // ledgers this account may hold at most (0: its fair share of bytes only)

	used    int64 // bytes, guarded by b.mu
	ledgers int64 // guarded by b.mu
	closed  bool
}

// Open returns a new account; capLedgers (0: none) bounds the ledgers it may hold besides its
// fair share of bytes. Close it when its reader stops.
func (b *Budget) Open(capLedgers int64) *Account {
	a := &Account{b: b, cap: capLedgers}
	if b == nil {
		return a
	}
	b.mu.Lock()
	b.accounts[a] = struct{}{}
	b.mu.Unlock()
	return a
}

// Close removes the account from the fair division. Ledgers it charged are still refunded
// when released.
func (a *Account) Close() {
	if a == nil || a.b == nil {
		return
	}
	b := a.b
	b.mu.Lock()
	delete(b.accounts, a)
	a.closed = true
	b.wakeLocked()
	b.mu.Unlock()
}

// Acquire waits until the account may take n more bytes, or ctx ends. It reserves nothing:
// the caller charges the bytes with CopyCharged right after (one goroutine per account
// acquires, so nobody takes them in between from this account; another account may, which
// only moves the overshoot bound above by one ledger).
func (a *Account) Acquire(ctx context.Context, n int64) error {
	if a == nil || a.b == nil {
		return ctx.Err()
	}
	b := a.b
	waited := false
	for {
		b.mu.Lock()
		ok := a.mayTakeLocked(n)
		ch := b.changed
		if !ok && !waited {
			waited = true
			b.waits++
		}
		b.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (a *Account) mayTakeLocked(n int64) bool {
	b := a.b
	if a.used == 0 || b.limit <= 0 && a.cap <= 0 {
		return true
	}
	if a.cap > 0 && a.ledgers+1 > a.cap {
		return false
	}
	if b.limit <= 0 {
		return true
	}
	if b.used+n > b.limit {
		return false
	}
	active := int64(0)
	for o := range b.accounts {
		if o.used > 0 || o == a {
			active++
		}
	}
	return a.used+n <= b.limit/max(active, 1)
}

// charge adds n bytes, and one ledger when ledger is set.
func (a *Account) charge(n int64, ledger bool) {
	if a == nil || a.b == nil || n == 0 {
		return
	}
	b := a.b
	b.mu.Lock()
	if ledger {
		a.ledgers++
	}
	a.used += n
	b.used += n
	b.peak = max(b.peak, b.used)
	b.mu.Unlock()
}

// refund returns n bytes and one ledger (the last Release of a charged ledger).
func (a *Account) refund(n int64) {
	if a == nil || a.b == nil || n == 0 {
		return
	}
	b := a.b
	b.mu.Lock()
	a.ledgers--
	a.used -= n
	b.used -= n
	b.wakeLocked()
	b.mu.Unlock()
}

func (b *Budget) wakeLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Used is the bytes the account holds now.
func (a *Account) Used() int64 {
	if a == nil || a.b == nil {
		return 0
	}
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return a.used
}

// BudgetStats is what a Budget reports.
type BudgetStats struct {
	Limit    int64 // bytes (<= 0: unlimited)
	Used     int64 // bytes held by ledgers in flight now
	Peak     int64 // the most ever held at once
	Waits    int64 // Acquire calls that had to wait (back pressure)
	Accounts int   // open accounts (readers)
}

// Stats returns the budget's figures (zero for a nil budget).
func (b *Budget) Stats() BudgetStats {
	if b == nil {
		return BudgetStats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{Limit: b.limit, Used: b.used, Peak: b.peak, Waits: b.waits, Accounts: len(b.accounts)}
}
