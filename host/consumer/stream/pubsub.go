package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"

	pubsubapi "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// PubSubConfig is the config of PublishToGooglePubSub (upstream's keys; PubSubV2Config adds
// chain_identifier). As upstream, PUBSUB_PROJECT_ID stands in for a missing project_id and
// GCLOUD_PUBSUB_PUBLISHER_SERVICE_ACCOUNT_KEY for missing credentials; PUBSUB_EMULATOR_HOST
// points the client at an emulator, GOOGLE_APPLICATION_CREDENTIALS at a key file (the
// library's own variables).
type PubSubConfig struct {
	ProjectID       string `mapstructure:"project_id"`
	TopicID         string `mapstructure:"topic_id"`
	CredentialsJSON string `mapstructure:"credentials_json"` // a service account key (secret)
	CredentialsFile string `mapstructure:"credentials_file"` // a service account key file
}

// PubSubV2Config is the config of PublishToGooglePubSubV2.
type PubSubV2Config struct {
	PubSubConfig `mapstructure:",squash"`
	// ChainIdentifier is StellarMainnet or StellarTestnet; by default the pipeline's network
	// (pubnet: StellarMainnet), else StellarTestnet as upstream.
	ChainIdentifier string `mapstructure:"chain_identifier"`
}

// The attributes cdpd adds to every message.
const (
	// AttrNaturalKey carries the record's natural key, unique per network: a subscriber drops
	// a message whose natural key it has seen (a replay after a crash).
	AttrNaturalKey = "natural_key"
)

// PubSub is PublishToGooglePubSub and PublishToGooglePubSubV2. Every message has the ledger
// sequence as its ordering key (messages of one ledger arrive in record order; publishing is
// ordered) and the natural_key attribute; V1 sends each record's JSON with the attributes
// event_type (the record kind), block_height (the ledger) and payment_id (when the record has
// one); V2 sends upstream's V2 envelope ({chainIdentifier, payload{paymentId,
// merchantAddress, amount, royaltyFee, payerAddress}, details{hash, block, to, from}}) of
// payment records (upstream's EventPayment fields: payment_id, merchant_id, amount,
// royalty_amount, from_id, tx_hash, block_height) with the attributes event_type "payment",
// chain_identifier, block_height, payment_id and message_version "v2". The topic is created
// when missing, as upstream.
//
// Data safety: at-least-once. Consume publishes the ledger's messages and returns when Pub/Sub
// has acknowledged every one (upstream also waited, one message at a time); a failure fails
// the ledger, and the pipeline's restart publishes it again, as a crash re-publishes the
// checkpoint window: subscribers drop duplicates by the natural_key attribute.
type PubSub struct {
	typ     string
	v2      bool
	chain   string
	cfg     PubSubConfig
	log     *slog.Logger
	metrics *consumer.Metrics

	client *pubsubapi.TopicAdminClient
	topic  string // projects/<project>/topics/<topic>

	records, bytes, ledgers, failed atomic.Int64
	last                            atomic.Uint32
}

// NewPublishToGooglePubSub is the constructor of PublishToGooglePubSub.
func NewPublishToGooglePubSub(c *PubSubConfig, env component.Env) (component.Consumer, error) {
	return newPubSub("PublishToGooglePubSub", false, c, "", env)
}

// NewPublishToGooglePubSubV2 is the constructor of PublishToGooglePubSubV2.
func NewPublishToGooglePubSubV2(c *PubSubV2Config, env component.Env) (component.Consumer, error) {
	return newPubSub("PublishToGooglePubSubV2", true, &c.PubSubConfig, c.ChainIdentifier, env)
}

func newPubSub(typ string, v2 bool, cp *PubSubConfig, chain string, env component.Env) (*PubSub, error) {
	c := *cp
	if c.ProjectID == "" {
		c.ProjectID = os.Getenv("PUBSUB_PROJECT_ID")
	}
	if c.CredentialsJSON == "" && c.CredentialsFile == "" {
		c.CredentialsJSON = os.Getenv("GCLOUD_PUBSUB_PUBLISHER_SERVICE_ACCOUNT_KEY")
	}
	if c.ProjectID == "" {
		return nil, fmt.Errorf("%s: project_id is required (or PUBSUB_PROJECT_ID)", typ)
	}
	if c.TopicID == "" {
		return nil, fmt.Errorf("%s: topic_id is required", typ)
	}
	if c.CredentialsJSON != "" && c.CredentialsFile != "" {
		return nil, fmt.Errorf("%s: give credentials_json or credentials_file, not both", typ)
	}
	if v2 && chain == "" {
		chain = "StellarTestnet"
		if env.Network == "pubnet" || env.Network == "mainnet" || env.Network == "public" {
			chain = "StellarMainnet"
		}
	}
	if v2 && chain != "StellarMainnet" && chain != "StellarTestnet" {
		return nil, fmt.Errorf("%s: chain_identifier %q is neither StellarMainnet nor StellarTestnet", typ, chain)
	}
	name := env.Name
	if name == "" {
		name = typ
	}
	p := &PubSub{typ: typ, v2: v2, chain: chain, cfg: c, log: env.Logger, metrics: consumer.NewMetrics(env.Metrics, name)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Start opens the client and creates the topic when missing. It uses the library's generated
// topic client (apiv1, which honours PUBSUB_EMULATOR_HOST itself): the high-level package's
// init starts an OpenCensus worker goroutine in every process that links it.
func (p *PubSub) Start(ctx context.Context) error {
	var opts []option.ClientOption
	switch {
	case p.cfg.CredentialsJSON != "":
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, []byte(p.cfg.CredentialsJSON)))
	case p.cfg.CredentialsFile != "":
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, p.cfg.CredentialsFile))
	}
	client, err := pubsubapi.NewTopicAdminClient(ctx, opts...)
	if err != nil {
		return fmt.Errorf("%s: creating the Pub/Sub client: %w", p.typ, err)
	}
	topic := "projects/" + p.cfg.ProjectID + "/topics/" + p.cfg.TopicID
	if _, err := client.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: topic}); status.Code(err) == codes.NotFound {
		_, err = client.CreateTopic(ctx, &pubsubpb.Topic{Name: topic})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			client.Close()
			return fmt.Errorf("%s: creating topic %s: %w", p.typ, p.cfg.TopicID, err)
		}
		p.log.Info("created Pub/Sub topic", "topic", p.cfg.TopicID)
	} else if err != nil {
		client.Close()
		return fmt.Errorf("%s: looking up topic %s: %w", p.typ, p.cfg.TopicID, err)
	}
	p.client, p.topic = client, topic
	return nil
}

// message builds the Pub/Sub message of one record.
func (p *PubSub) message(seq uint32, r component.Record) (*pubsubpb.PubsubMessage, error) {
	raw, err := encode(r)
	if err != nil {
		return nil, err
	}
	f := fields(raw)
	attrs := map[string]string{AttrNaturalKey: r.NaturalKey(), "block_height": strconv.FormatUint(uint64(seq), 10)}
	key := strconv.FormatUint(uint64(seq), 10)
	if !p.v2 {
		attrs["event_type"] = r.RecordKind()
		if id := text(f, "payment_id"); id != "" {
			attrs["payment_id"] = id
		}
		return &pubsubpb.PubsubMessage{Data: raw, Attributes: attrs, OrderingKey: key}, nil
	}
	id := text(f, "payment_id")
	if id == "" {
		return nil, fmt.Errorf("%s takes payment records with payment_id (EventPaymentExtractor's); %s record %q has none", p.typ, r.RecordKind(), r.NaturalKey())
	}
	type payload struct {
		PaymentID       string `json:"paymentId"`
		MerchantAddress string `json:"merchantAddress"`
		Amount          string `json:"amount"`
		RoyaltyFee      string `json:"royaltyFee"`
		PayerAddress    string `json:"payerAddress"`
	}
	type details struct {
		Hash  string `json:"hash"`
		Block uint32 `json:"block"`
		To    string `json:"to"`
		From  string `json:"from"`
	}
	block := seq
	if b, err := strconv.ParseUint(text(f, "block_height"), 10, 32); err == nil && b != 0 {
		block = uint32(b)
	}
	env := struct {
		ChainIdentifier string  `json:"chainIdentifier"`
		Payload         payload `json:"payload"`
		Details         details `json:"details"`
	}{p.chain,
		payload{id, text(f, "merchant_id"), text(f, "amount"), text(f, "royalty_amount"), text(f, "from_id")},
		details{text(f, "tx_hash"), block, text(f, "merchant_id"), text(f, "from_id")}}
	data, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encoding the V2 message of %q: %w", r.NaturalKey(), err)
	}
	attrs["event_type"], attrs["chain_identifier"], attrs["payment_id"], attrs["message_version"] = "payment", p.chain, id, "v2"
	attrs["block_height"] = strconv.FormatUint(uint64(block), 10)
	return &pubsubpb.PubsubMessage{Data: data, Attributes: attrs, OrderingKey: key}, nil
}

// Pub/Sub's limits of one publish request, with room for the request's own fields.
const (
	maxBatchMessages = 1000
	maxBatchBytes    = 9 << 20
)

// Consume publishes the ledger's messages, in record order, in requests of at most 1000
// messages and 9 MiB sent one after the other (so the ledger's ordering key keeps the order),
// and returns when Pub/Sub has acknowledged all of them. The generated client retries
// transient failures (Unavailable, DeadlineExceeded, ...) with its own backoff.
func (p *PubSub) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	if p.client == nil {
		return fmt.Errorf("%s: not started", p.typ)
	}
	seq := l.Sequence()
	var batch []*pubsubpb.PubsubMessage
	var n, size, sent int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := p.client.Publish(ctx, &pubsubpb.PublishRequest{Topic: p.topic, Messages: batch}); err != nil {
			p.failed.Add(int64(len(recs) - sent))
			p.metrics.Errors.Inc()
			return fmt.Errorf("%s: ledger %d: publishing messages %d..%d of %d: %w", p.typ, seq, sent+1, sent+len(batch), len(recs), err)
		}
		sent += len(batch)
		batch, size = batch[:0], 0
		return nil
	}
	for _, r := range recs {
		m, err := p.message(seq, r)
		if err != nil {
			return fmt.Errorf("%s: ledger %d: %w", p.typ, seq, err)
		}
		msize := len(m.Data) + len(m.OrderingKey) + 64
		for k, v := range m.Attributes {
			msize += len(k) + len(v)
		}
		if len(batch) == maxBatchMessages || (len(batch) > 0 && size+msize > maxBatchBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, m)
		size += msize
		n += len(m.Data)
	}
	if err := flush(); err != nil {
		return err
	}
	p.records.Add(int64(len(recs)))
	p.bytes.Add(int64(n))
	p.ledgers.Add(1)
	p.last.Store(seq)
	p.metrics.Records.Add(float64(len(recs)))
	p.metrics.Bytes.Add(float64(n))
	p.metrics.Ledgers.Inc()
	return nil
}

// Flush does nothing: Consume waits for its ledger's acknowledgements.
func (p *PubSub) Flush(context.Context) error { return nil }

// Close closes the client.
func (p *PubSub) Close(context.Context) error {
	if p.client != nil {
		err := p.client.Close()
		p.client = nil
		if err != nil {
			return fmt.Errorf("%s: closing the client: %w", p.typ, err)
		}
	}
	return nil
}

// Stats reports messages_published, bytes_published, ledgers_published, publish_failures and
// last_ledger.
func (p *PubSub) Stats() map[string]float64 {
	return map[string]float64{
		"messages_published": float64(p.records.Load()),
		"bytes_published":    float64(p.bytes.Load()),
		"ledgers_published":  float64(p.ledgers.Load()),
		"publish_failures":   float64(p.failed.Load()),
		"last_ledger":        float64(p.last.Load()),
	}
}
