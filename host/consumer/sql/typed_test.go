package sql

import (
	"context"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/host/processor/account"
	"github.com/withobsrvr/cdpd/host/processor/contract"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

// newTyped builds a typed PostgreSQL consumer from upstream's keys (host, port, database,
// username, password) on the test server.
func newTyped(t *testing.T, srv *pgtest.Server, ctor func(*UpstreamPostgresConfig, component.Env) (component.Consumer, error), pipeline string) *Postgres {
	t.Helper()
	c, err := component.Construct(ctor, map[string]any{"host": "127.0.0.1", "port": srv.Port(), "database": srv.DBName(t),
		"username": "postgres", "password": "unused", "sslmode": "disable", "flush_interval_ms": 1500}, component.Env{Pipeline: pipeline})
	if err != nil {
		t.Fatal(err)
	}
	p := c.(*Postgres)
	if p.FlushInterval().Milliseconds() != 1500 {
		t.Errorf("flush_interval_ms 1500: FlushInterval %s", p.FlushInterval())
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// consumeReal runs a processor on both real ledgers and gives its records to the consumer.
func consumeReal[C any](t *testing.T, p component.Consumer, ctor func(*C, component.Env) (component.Processor, error)) int {
	t.Helper()
	n := 0
	for _, rl := range proctest.RealLedgers(t) {
		recs := proctest.Run(t, ctor, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		l, _ := proctest.Wrap(t, rl.Raw)
		if err := p.Consume(context.Background(), l, recs); err != nil {
			t.Fatal(err)
		}
		n += len(recs)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the processor emitted nothing on the real ledgers: the test would test nothing")
	}
	return n
}

// Upstream's tables and column names, one row per record of the real ledgers.
func TestTypedPostgresUpstreamTables(t *testing.T) {
	srv := pgtest.Shared(t)
	c := connect(t, srv)
	ctx := context.Background()

	n := consumeReal(t, newTyped(t, srv, NewSaveContractEventsToPostgreSQL, "typed-events"), contract.NewContractEvent)
	var rows, distinct, withTopic int
	if err := c.QueryRow(ctx, `SELECT count(*), count(DISTINCT (transaction_hash, event_index)), count(topic)
		FROM contract_events WHERE timestamp IS NOT NULL AND in_successful_tx IS NOT NULL`).Scan(&rows, &distinct, &withTopic); err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n || withTopic != n {
		t.Errorf("contract_events: %d rows, %d distinct, %d with topic; %d records", rows, distinct, withTopic, n)
	}

	n = consumeReal(t, newTyped(t, srv, NewSaveAccountDataToPostgreSQL, "typed-accounts"), account.NewAccountData)
	var sum int64
	if err := c.QueryRow(ctx, `SELECT count(*), coalesce(sum(threshold_low + threshold_medium + threshold_high + sequence_number % 7), 0)
		FROM stellar.accounts`).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	if rows != n || sum == 0 {
		t.Errorf("stellar.accounts: %d rows (sum %d), %d records", rows, sum, n)
	}

	// A kind the consumer does not take is an error naming the kinds it takes.
	p := newTyped(t, srv, NewSaveContractEventsToPostgreSQL, "typed-wrong")
	err := p.Consume(ctx, consumertest.Ledger(t, 1), consumertest.MakeRecords(1, 1))
	if err == nil || !strings.Contains(err.Error(), `"all_types"`) || !strings.Contains(err.Error(), "contract_events") {
		t.Errorf("an all_types record for SaveContractEventsToPostgreSQL: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// BufferedPostgreSQL keeps records of kinds it has no table for as JSON in generic_events;
// a replay doubles nothing.
func TestBufferedPostgreSQLGenericEvents(t *testing.T) {
	srv := pgtest.Shared(t)
	for range 2 {
		p := newTyped(t, srv, NewBufferedPostgreSQL, "typed-buffered")
		consumertest.ConsumeRange(t, p, 1, 4, 3)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var rows, big int
	if err := connect(t, srv).QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE (data->>'big')::bigint >= 1000)
		FROM generic_events WHERE kind = 'all_types'`).Scan(&rows, &big); err != nil {
		t.Fatal(err)
	}
	if rows != 12 || big != 12 { // ledgers 1..4, 3 records each
		t.Errorf("generic_events: %d rows (%d with data), want 12", rows, big)
	}
}

func TestTypedPostgresConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"database_url": "postgres://127.0.0.1/x", "connection_string": "postgres://127.0.0.1/y"}, "not both"},
	} {
		_, err := component.Construct(NewWalletBackendPostgreSQL, tc.cfg, component.Env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}
