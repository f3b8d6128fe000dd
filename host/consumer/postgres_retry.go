package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/withobsrvr/cdpd/internal/backoff"
)

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func permanent(err error) error { return permanentError{err} }

// retryable reports whether err means the database is (temporarily) unreachable, as opposed
// to a problem with the data or the schema, which retrying cannot fix.
func retryable(err error) bool {
	var perm permanentError
	if errors.As(err, &perm) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, crash, cannot connect now
			pgErr.Code == "53300",                        // too many connections
			pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return true
		}
		return false
	}
	return true // network errors, closed connections, connect failures
}

// retry runs fn until it succeeds, fails permanently or ctx is cancelled, backing off
// exponentially (internal/backoff: 100 ms doubling up to max_retry_wait) while the database is
// unreachable.
func (p *Postgres) retry(ctx context.Context, fn func(context.Context) error) error {
	policy := backoff.Policy{Base: 100 * time.Millisecond, Max: p.cfg.MaxRetryWait, Factor: 2}
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			p.setHealth("")
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("SaveToPostgreSQL: %w (gave up: %w)", err, context.Cause(ctx))
		}
		if !retryable(err) {
			return fmt.Errorf("SaveToPostgreSQL: %w", err)
		}
		wait := policy.Delay(attempt)
		p.retries.Add(1)
		p.setHealth("database unreachable: " + err.Error())
		p.log.Warn("database unreachable, retrying",
			"error", err.Error(), "retry_in", wait, "pending_records", p.nRecs)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("SaveToPostgreSQL: database unreachable: %w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
	}
}
