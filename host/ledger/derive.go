package ledger

import (
	"fmt"
	"sync"

	"github.com/stellar/go-stellar-sdk/xdr"
)

// derived is one value computed from a ledger's decode, shared by every holder.
type derived struct {
	once sync.Once
	val  any
	err  error
}

// Derive returns the value f computes from the ledger's decoded LedgerCloseMeta, computing it
// once per ledger and key however many holders (pipelines) ask: the "decoded at most once"
// rule, extended to what the SDK derives from the decode (the token transfer events, the
// transactions with their hashes). The key names the derivation and everything its result
// depends on (e.g. "token_transfer:" + the network passphrase); the result is shared read
// only, like Decoded's, and must not alias Raw. Holders must not modify it. A failed
// derivation is shared too (every holder gets the error).
func Derive[T any](l *Ledger, key string, f func(*xdr.LedgerCloseMeta) (T, error)) (T, error) {
	lcm, err := l.Decoded()
	if err != nil {
		var zero T
		return zero, err
	}
	return derive(l, key, func() (T, error) { return f(lcm) })
}

// DeriveView is Derive for a value computed from the ledger's zero-copy view, without the full
// decode (e.g. the SDK's transaction parts and events of the view path): computed once per
// ledger and key for every holder, shared read only. Unlike Derive's, the value may alias Raw,
// so, like Raw, it is valid only while the holder holds its reference. Keys share Derive's
// name space.
func DeriveView[T any](l *Ledger, key string, f func(xdr.LedgerCloseMetaView) (T, error)) (T, error) {
	v := l.View() // panics on a released ledger, as Raw does
	return derive(l, key, func() (T, error) { return f(v) })
}

func derive[T any](l *Ledger, key string, f func() (T, error)) (T, error) {
	var zero T
	c := l.c
	c.derivedMu.Lock()
	d := c.derived[key]
	if d == nil {
		if c.derived == nil {
			c.derived = map[string]*derived{}
		}
		d = &derived{}
		c.derived[key] = d
	}
	c.derivedMu.Unlock()
	d.once.Do(func() {
		defer func() { // a panic is every holder's error, not a value of nil
			if r := recover(); r != nil {
				d.err = fmt.Errorf("ledger %d: deriving %q panicked: %v", c.seq, key, r)
			}
		}()
		d.val, d.err = f()
	})
	if d.err != nil {
		return zero, d.err
	}
	v, ok := d.val.(T)
	if !ok {
		return zero, fmt.Errorf("ledger %d: derived value %q is a %T, not the %T asked for", c.seq, key, d.val, zero)
	}
	return v, nil
}
