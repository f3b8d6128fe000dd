package sql

import (
	"context"
	"testing"

	"github.com/withobsrvr/cdpd/host/processor/contract"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

// SaveExtractedContractInvocationsToPostgreSQL: ContractInvocationExtractor's records of a
// real ledger (the KALE contract's plant invocations, the farmer extracted as funder) in
// upstream's extracted_contract_invocations, row for record; a replay doubles nothing.
func TestSaveExtractedContractInvocationsToPostgreSQL(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	rl := proctest.RealLedgers(t)[0] // 58752000
	invs := proctest.Run(t, contract.NewContractInvocation, map[string]any{"network": "pubnet"}, rl.Raw, nil)
	const kale = "CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"
	recs := proctest.Run(t, contract.NewContractInvocationExtractor, map[string]any{"extraction_schemas": map[string]any{
		"kale": map[string]any{"function_name": "plant", "contract_ids": []any{kale},
			"extractors": map[string]any{"funder": map[string]any{"argument_index": 0, "field_type": "address", "required": true}}}}},
		rl.Raw, invs)
	if len(recs) == 0 {
		t.Fatal("no plant invocations on the real ledger: the test would test nothing")
	}
	for range 2 {
		p := newTyped(t, srv, NewSaveExtractedContractInvocationsToPostgreSQL, "extracted")
		l, _ := proctest.Wrap(t, rl.Raw)
		if err := p.Consume(ctx, l, recs); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	byKey := map[string]contract.ExtractedContractInvocationRecord{}
	for _, r := range recs {
		byKey[r.NaturalKey()] = r.(contract.ExtractedContractInvocationRecord)
	}
	rows, err := connect(t, srv).Query(ctx, `SELECT natural_key, toid::text, ledger, tx_hash, contract_id, function_name, funder,
		recipient IS NULL AND amount IS NULL, schema_name FROM extracted_contract_invocations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var key, toid, hash, c, fn, funder, schema string
		var ledger int64
		var nulls bool
		if err := rows.Scan(&key, &toid, &ledger, &hash, &c, &fn, &funder, &nulls, &schema); err != nil {
			t.Fatal(err)
		}
		w, ok := byKey[key]
		if !ok || toid != proctest.Itoa(int64(w.Toid)) || ledger != 58752000 || hash != w.TxHash || c != kale || fn != "plant" ||
			funder != *w.Funder || funder == "" || !nulls || schema != "kale" {
			t.Errorf("row %s: %s %d %s %s %s %s %v %s; record %+v", key, toid, ledger, hash, c, fn, funder, nulls, schema, w)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(recs) {
		t.Errorf("%d rows after a replay, %d records", n, len(recs))
	}
	// Other kinds are an error, not a silent row.
	p := newTyped(t, srv, NewSaveExtractedContractInvocationsToPostgreSQL, "extracted-wrong")
	l, _ := proctest.Wrap(t, rl.Raw)
	if err := p.Consume(ctx, l, invs[:1]); err == nil {
		t.Error("a contract_invocations record was accepted")
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
