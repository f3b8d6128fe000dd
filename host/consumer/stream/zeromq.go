package stream

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-zeromq/zmq4"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// ZeroMQConfig is the config of SaveToZeroMQ.
type ZeroMQConfig struct {
	// Address is the endpoint the PUB socket binds ("tcp://127.0.0.1:5555"; port 0 picks a free
	// one, see Addr).
	Address string `mapstructure:"address"`
	// Endpoint is another spelling of address, the one upstream's shipped example files use
	// (upstream itself reads only address, so those files fail there; here they work).
	Endpoint string `mapstructure:"endpoint"`
	// SendHWM bounds the socket's outbound queue (messages); beyond it messages are dropped, as
	// a ZeroMQ PUB socket does at its high-water mark (cdpd's key; upstream had libzmq's 1000).
	SendHWM int `mapstructure:"send_hwm"`
}

// SetDefaults implements component.Defaulter.
func (c *ZeroMQConfig) SetDefaults() { c.SendHWM = 10000 }

// ZeroMQ is SaveToZeroMQ: a PUB socket bound to address; every record is published as one
// single-frame message holding its JSON (upstream's wire: subscribers subscribe to "" or to a
// prefix of the JSON, e.g. `{"network":"pubnet"`).
//
// Data safety: at-most-once, to the subscribers connected at the time. A message is handed to
// the socket's bounded queue (send_hwm) and Consume returns; nothing is kept for subscribers
// that are absent, slow beyond the queue (ZeroMQ drops silently at the high-water mark, and
// go-zeromq gives no count) or that connect later, and a restart re-publishes the pipeline's
// checkpoint window, so a subscriber may see a record twice: use the natural key to drop
// duplicates. Upstream's goczmq needed cgo; the wire is the same. go-zeromq v0.17.0 leaves one
// idle goroutine behind per closed PUB socket (its Close does not stop the socket's writer,
// whose queue is empty by then): one per start of this consumer.
type ZeroMQ struct {
	addr    string
	hwm     int
	log     *slog.Logger
	metrics *consumer.Metrics

	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	sock   zmq4.Socket

	records, bytes, ledgers atomic.Int64
	last                    atomic.Uint32
}

// NewSaveToZeroMQ is the constructor of SaveToZeroMQ.
func NewSaveToZeroMQ(c *ZeroMQConfig, env component.Env) (component.Consumer, error) {
	switch {
	case c.Address == "":
		c.Address = c.Endpoint
	case c.Endpoint != "" && c.Endpoint != c.Address:
		return nil, fmt.Errorf("SaveToZeroMQ: address and endpoint differ (they are one key: give one)")
	}
	if c.Address == "" {
		return nil, fmt.Errorf("SaveToZeroMQ: address is required (e.g. tcp://127.0.0.1:5555)")
	}
	if !strings.Contains(c.Address, "://") {
		return nil, fmt.Errorf("SaveToZeroMQ: address %q needs a transport (tcp://host:port or ipc://path)", c.Address)
	}
	if c.SendHWM <= 0 {
		return nil, fmt.Errorf("SaveToZeroMQ: send_hwm must be positive")
	}
	name := env.Name
	if name == "" {
		name = "SaveToZeroMQ"
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ZeroMQ{addr: c.Address, hwm: c.SendHWM, log: log, metrics: consumer.NewMetrics(env.Metrics, name)}, nil
}

// Start binds the socket.
func (z *ZeroMQ) Start(context.Context) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.sock != nil {
		return nil
	}
	z.ctx, z.cancel = context.WithCancel(context.Background())
	s := zmq4.NewPub(z.ctx, zmq4.WithLogger(slog.NewLogLogger(z.log.Handler(), slog.LevelWarn)))
	if err := s.SetOption(zmq4.OptionHWM, z.hwm); err != nil {
		z.cancel()
		_ = s.Close()
		return fmt.Errorf("SaveToZeroMQ: setting the high-water mark: %w", err)
	}
	if err := s.Listen(z.addr); err != nil {
		z.cancel()
		_ = s.Close()
		return fmt.Errorf("SaveToZeroMQ: binding %s: %w", z.addr, err)
	}
	z.sock = s
	return nil
}

// Addr is the bound address (nil before Start): a test binding port 0 reads its port here.
func (z *ZeroMQ) Addr() net.Addr {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.sock == nil {
		return nil
	}
	return z.sock.Addr()
}

// Consume publishes one message per record.
func (z *ZeroMQ) Consume(_ context.Context, l *ledger.Ledger, recs []component.Record) error {
	z.mu.Lock()
	s := z.sock
	z.mu.Unlock()
	if s == nil {
		return fmt.Errorf("SaveToZeroMQ: not started")
	}
	var n int
	for _, r := range recs {
		b, err := encode(r)
		if err != nil {
			return fmt.Errorf("SaveToZeroMQ: ledger %d: %w", l.Sequence(), err)
		}
		if err := s.Send(zmq4.NewMsg(b)); err != nil {
			z.metrics.Errors.Inc()
			return fmt.Errorf("SaveToZeroMQ: ledger %d: publishing: %w", l.Sequence(), err)
		}
		n += len(b)
	}
	z.records.Add(int64(len(recs)))
	z.bytes.Add(int64(n))
	z.ledgers.Add(1)
	z.last.Store(l.Sequence())
	z.metrics.Records.Add(float64(len(recs)))
	z.metrics.Bytes.Add(float64(n))
	z.metrics.Ledgers.Inc()
	return nil
}

// Flush does nothing: messages are handed to the socket in Consume.
func (z *ZeroMQ) Flush(context.Context) error { return nil }

// Close closes the socket (messages still queued are dropped, as ZeroMQ's linger 0).
func (z *ZeroMQ) Close(context.Context) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.sock == nil {
		return nil
	}
	z.cancel() // first: the accept loop then ends when the listener closes
	err := z.sock.Close()
	z.sock = nil
	if err != nil {
		return fmt.Errorf("SaveToZeroMQ: closing the socket: %w", err)
	}
	return nil
}

// Stats reports records_published, bytes_published, ledgers_published and last_ledger.
func (z *ZeroMQ) Stats() map[string]float64 {
	return map[string]float64{
		"records_published": float64(z.records.Load()),
		"bytes_published":   float64(z.bytes.Load()),
		"ledgers_published": float64(z.ledgers.Load()),
		"last_ledger":       float64(z.last.Load()),
	}
}
