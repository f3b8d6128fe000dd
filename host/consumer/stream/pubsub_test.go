package stream

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/withobsrvr/cdpd/host/component"
)

// startFake runs the Pub/Sub library's in-process fake server and points the client at it
// the way users point it at an emulator (PUBSUB_EMULATOR_HOST).
func startFake(t *testing.T) *pstest.Server { return startFakeB(t) }

func startFakeB(t testing.TB) *pstest.Server {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	return srv
}

func byNaturalKey(ms []*pstest.Message) []*pstest.Message {
	sort.Slice(ms, func(i, j int) bool { return ms[i].Attributes[AttrNaturalKey] < ms[j].Attributes[AttrNaturalKey] })
	return ms
}

// PublishToGooglePubSub creates the topic and publishes every record's JSON with the ledger as
// ordering key and the natural key, kind and ledger as attributes; Consume returns once all
// are acknowledged.
func TestPublishToGooglePubSub(t *testing.T) {
	srv := startFake(t)
	p := construct(t, NewPublishToGooglePubSub, map[string]any{"project_id": "proj", "topic_id": "ledgers"}, env("PublishToGooglePubSub"))
	for seq := uint32(10); seq <= 11; seq++ {
		if err := p.Consume(bg, testLedger(t, seq), payments(seq, 3)); err != nil {
			t.Fatal(err)
		}
	}
	ms := byNaturalKey(srv.Messages())
	if len(ms) != 6 {
		t.Fatalf("%d messages on the fake server, want 6 (acknowledged before Consume returned)", len(ms))
	}
	want := payments(10, 3)
	for i, m := range ms[:3] {
		wb, _ := json.Marshal(want[i])
		if string(m.Data) != string(wb) || m.OrderingKey != "10" || m.Topic != "projects/proj/topics/ledgers" ||
			m.Attributes[AttrNaturalKey] != want[i].NaturalKey() || m.Attributes["event_type"] != "payments" || m.Attributes["block_height"] != "10" {
			t.Fatalf("message %d: %s %v key %q topic %s", i, m.Data, m.Attributes, m.OrderingKey, m.Topic)
		}
	}
	if ms[3].OrderingKey != "11" {
		t.Fatalf("ledger 11's ordering key %q", ms[3].OrderingKey)
	}
	if st := p.(*PubSub).Stats(); st["messages_published"] != 6 || st["last_ledger"] != 11 {
		t.Fatalf("stats %v", st)
	}
	// A second consumer finds the topic there.
	construct(t, NewPublishToGooglePubSub, map[string]any{"project_id": "proj", "topic_id": "ledgers"}, env("again"))
}

// PublishToGooglePubSubV2 sends upstream's V2 envelope of payment records; the chain follows
// the pipeline's network unless chain_identifier says otherwise.
func TestPublishToGooglePubSubV2(t *testing.T) {
	srv := startFake(t)
	e := env("PublishToGooglePubSubV2")
	e.Network = "pubnet"
	p := construct(t, NewPublishToGooglePubSubV2, map[string]any{"project_id": "proj", "topic_id": "payments"}, e)
	rec := payment{Ledger: 20, Index: 0, Type: "payment", From: "GPAYER", PaymentID: "0xabc", MerchantID: "GMERCHANT",
		Amount: "", Royalty: 50000, TxHash: "deadbeef", BlockHeight: 20}
	raw, _ := json.Marshal(rec)
	raw = []byte(strings.Replace(string(raw), `"amount":""`, `"amount":12345678901234567890,"from_id":"GPAYER"`, 1))
	if err := p.Consume(bg, testLedger(t, 20), []component.Record{rawRecord{raw: raw, key: rec.NaturalKey()}}); err != nil {
		t.Fatal(err)
	}
	ms := srv.Messages()
	if len(ms) != 1 {
		t.Fatalf("%d messages", len(ms))
	}
	want := `{"chainIdentifier":"StellarMainnet","payload":{"paymentId":"0xabc","merchantAddress":"GMERCHANT","amount":"12345678901234567890","royaltyFee":"50000","payerAddress":"GPAYER"},"details":{"hash":"deadbeef","block":20,"to":"GMERCHANT","from":"GPAYER"}}`
	if string(ms[0].Data) != want {
		t.Fatalf("V2 message\n%s\nwant\n%s", ms[0].Data, want)
	}
	a := ms[0].Attributes
	if a["message_version"] != "v2" || a["chain_identifier"] != "StellarMainnet" || a["payment_id"] != "0xabc" ||
		a["event_type"] != "payment" || a["block_height"] != "20" || a[AttrNaturalKey] != rec.NaturalKey() || ms[0].OrderingKey != "20" {
		t.Fatalf("attributes %v, ordering key %q", a, ms[0].OrderingKey)
	}
	// A record without payment_id is refused with the reason.
	if err := p.Consume(bg, testLedger(t, 21), payments(21, 1)); err == nil || !strings.Contains(err.Error(), "payment_id") {
		t.Fatalf("a record without payment_id: %v", err)
	}
}

// rawRecord is a record whose JSON is given.
type rawRecord struct {
	raw []byte
	key string
}

func (r rawRecord) MarshalJSON() ([]byte, error) { return r.raw, nil }
func (rawRecord) RecordKind() string             { return "event_payments" }
func (r rawRecord) NaturalKey() string           { return r.key }

func TestPubSubConfig(t *testing.T) {
	t.Setenv("PUBSUB_PROJECT_ID", "")
	t.Setenv("GCLOUD_PUBSUB_PUBLISHER_SERVICE_ACCOUNT_KEY", "")
	for _, tt := range []struct {
		v2   bool
		cfg  map[string]any
		want string
	}{
		{false, map[string]any{"topic_id": "t"}, "project_id"},
		{false, map[string]any{"project_id": "p"}, "topic_id"},
		{false, map[string]any{"project_id": "p", "topic_id": "t", "chain_identifier": "StellarMainnet"}, "chain_identifier"},
		{true, map[string]any{"project_id": "p", "topic_id": "t", "chain_identifier": "Ethereum"}, "chain_identifier"},
		{true, map[string]any{"project_id": "p", "topic_id": "t", "credentials_json": "{}", "credentials_file": "f"}, "not both"},
	} {
		var err error
		if tt.v2 {
			_, err = component.Construct(NewPublishToGooglePubSubV2, tt.cfg, env("c"))
		} else {
			_, err = component.Construct(NewPublishToGooglePubSub, tt.cfg, env("c"))
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
	t.Setenv("PUBSUB_PROJECT_ID", "from-env")
	c, err := component.Construct(NewPublishToGooglePubSubV2, map[string]any{"topic_id": "t"}, env("c"))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.(*PubSub); p.cfg.ProjectID != "from-env" || p.chain != "StellarTestnet" {
		t.Fatalf("project %q chain %q", p.cfg.ProjectID, p.chain)
	}
}

// A ledger of more than 1000 records goes out in several requests, in record order.
func TestPublishToGooglePubSubLargeLedger(t *testing.T) {
	srv := startFake(t)
	p := construct(t, NewPublishToGooglePubSub, map[string]any{"project_id": "proj", "topic_id": "big"}, env("big"))
	recs := payments(30, 2500)
	if err := p.Consume(bg, testLedger(t, 30), recs); err != nil {
		t.Fatal(err)
	}
	ms := srv.Messages()
	if len(ms) != len(recs) {
		t.Fatalf("%d messages, want %d", len(ms), len(recs))
	}
	sort.Slice(ms, func(i, j int) bool { return msgID(t, ms[i]) < msgID(t, ms[j]) }) // the fake numbers messages as it receives them
	for i, m := range ms {
		if m.Attributes[AttrNaturalKey] != recs[i].NaturalKey() {
			t.Fatalf("message %d is %s, want %s (record order)", i, m.Attributes[AttrNaturalKey], recs[i].NaturalKey())
		}
	}
}

func msgID(t *testing.T, m *pstest.Message) int {
	n, err := strconv.Atoi(strings.TrimPrefix(m.ID, "m"))
	if err != nil {
		t.Fatalf("message id %q", m.ID)
	}
	return n
}
