package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// WebSocketConfig is the config of SaveToWebSocket.
type WebSocketConfig struct {
	// Port is upstream's key: the server listens on ":<port>" (every interface).
	Port string `mapstructure:"port"`
	// Address (cdpd's key) is the host:port to listen on; it wins over port. "127.0.0.1:0"
	// picks a free port (see Addr).
	Address string `mapstructure:"address"`
	Path    string `mapstructure:"path"`
	// MaxQueueSize bounds each client's buffer (messages); a client whose buffer is full is
	// dropped.
	MaxQueueSize int `mapstructure:"max_queue_size"`
	// MaxClients bounds the connected clients (cdpd's key); more are answered 503.
	MaxClients int `mapstructure:"max_clients"`
	// WriteTimeout bounds writing one message to a client (cdpd's key).
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
}

// SetDefaults implements component.Defaulter (upstream's port, path and queue size).
func (c *WebSocketConfig) SetDefaults() {
	*c = WebSocketConfig{Port: "8080", Path: "/ws", MaxQueueSize: 1000, MaxClients: 1000, WriteTimeout: 10 * time.Second}
}

// WebSocket is SaveToWebSocket: a WebSocket server at path. A client gets a welcome message
// ({"type":"welcome",...}), registers with {"type":"register","filters":{...}} (answered
// {"type":"registered",...}; a later register replaces its filters), and from then on
// receives every record (its JSON, one text message each) that passes its filters, as
// upstream: types (the record's "type" field or its record kind), account_ids (any of the
// record's account fields: buyer_account_id, seller_account_id, source_account_id,
// destination_account_id, account_id, from, to), asset_codes (asset_code, when the record has
// one). Any origin may connect, as upstream: the stream is public and carries no credentials.
//
// Data safety: at-most-once, to the clients registered at the time. Consume never waits for a
// client: each has a buffer of max_queue_size messages, and a client whose buffer is full is
// dropped (closed with "slow consumer", counted in cdp_pipeline_consumer_clients_dropped_total)
// rather than slowing the pipeline or growing memory (upstream did the same, silently).
// Records before a client registers are not kept for it, and a restart re-sends the
// pipeline's checkpoint window to whoever is then connected.
type WebSocket struct {
	cfg     WebSocketConfig
	addr    string
	log     *slog.Logger
	metrics *consumer.Metrics
	gauge   prometheus.Gauge
	dropC   prometheus.Counter

	srv  *http.Server
	ln   net.Listener
	wg   sync.WaitGroup // the server and every client's goroutines
	done chan struct{}  // closed by Close

	mu      sync.Mutex
	clients map[*wsClient]struct{}

	records, ledgers, sent, dropped atomic.Int64
	last                            atomic.Uint32
}

type wsClient struct {
	conn *websocket.Conn
	send chan []byte
	kill chan struct{} // closed once when the client is dropped
	once sync.Once

	mu         sync.Mutex
	registered bool
	filters    wsFilters
}

type wsFilters struct {
	Types      []string `json:"types"`
	AccountIDs []string `json:"account_ids"`
	AssetCodes []string `json:"asset_codes"`
	MinAmount  string   `json:"min_amount,omitempty"` // accepted, as upstream, and not applied
}

// NewSaveToWebSocket is the constructor of SaveToWebSocket.
func NewSaveToWebSocket(c *WebSocketConfig, env component.Env) (component.Consumer, error) {
	addr := c.Address
	if addr == "" {
		if c.Port == "" {
			return nil, fmt.Errorf("SaveToWebSocket: port or address is required")
		}
		addr = ":" + c.Port
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("SaveToWebSocket: listen address %q: %w", addr, err)
	}
	if c.Path == "" || c.Path[0] != '/' {
		return nil, fmt.Errorf("SaveToWebSocket: path %q must start with /", c.Path)
	}
	if c.MaxQueueSize <= 0 || c.MaxClients <= 0 || c.WriteTimeout <= 0 {
		return nil, fmt.Errorf("SaveToWebSocket: max_queue_size, max_clients and write_timeout must be positive")
	}
	name := env.Name
	if name == "" {
		name = "SaveToWebSocket"
	}
	w := &WebSocket{cfg: *c, addr: addr, log: env.Logger, metrics: consumer.NewMetrics(env.Metrics, name),
		clients: map[*wsClient]struct{}{}, done: make(chan struct{})}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	f := consumer.Factory(env.Metrics, name)
	w.gauge = f.NewGauge(prometheus.GaugeOpts{Namespace: consumer.MetricsNamespace, Name: "clients",
		Help: "Clients connected to a streaming consumer."})
	w.dropC = f.NewCounter(prometheus.CounterOpts{Namespace: consumer.MetricsNamespace, Name: "clients_dropped_total",
		Help: "Clients a streaming consumer dropped because their buffer was full (slow consumers)."})
	return w, nil
}

// Start listens and serves.
func (w *WebSocket) Start(context.Context) error {
	ln, err := net.Listen("tcp", w.addr)
	if err != nil {
		return fmt.Errorf("SaveToWebSocket: listening on %s: %w", w.addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(w.cfg.Path, w.handle)
	w.ln = ln
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(w.log.Handler(), slog.LevelWarn)}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if err := w.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("websocket server stopped", "error", err.Error())
		}
	}()
	w.log.Info("websocket server listening", "addr", ln.Addr().String(), "path", w.cfg.Path)
	return nil
}

// Addr is the address the server listens on (nil before Start).
func (w *WebSocket) Addr() net.Addr {
	if w.ln == nil {
		return nil
	}
	return w.ln.Addr()
}

func (w *WebSocket) handle(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	full := len(w.clients) >= w.cfg.MaxClients
	w.mu.Unlock()
	if full {
		http.Error(rw, "too many clients", http.StatusServiceUnavailable)
		return
	}
	conn, err := websocket.Accept(rw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept answered the request
	}
	conn.SetReadLimit(512 << 10)
	c := &wsClient{conn: conn, send: make(chan []byte, w.cfg.MaxQueueSize), kill: make(chan struct{})}
	w.mu.Lock()
	select {
	case <-w.done: // closing
		w.mu.Unlock()
		_ = conn.Close(websocket.StatusGoingAway, "server closing")
		return
	default:
	}
	w.clients[c] = struct{}{}
	w.gauge.Set(float64(len(w.clients)))
	w.wg.Add(2) // the reader, and this handler: the writer (hijacked, so Shutdown does not wait for it)
	w.mu.Unlock()
	defer w.wg.Done()
	c.send <- mustJSON(map[string]any{"type": "welcome", "message": "send a registration message to begin receiving records",
		"format": map[string]any{"type": "register", "filters": wsFilters{Types: []string{}, AccountIDs: []string{}, AssetCodes: []string{}}}})
	go w.read(c)
	w.write(c)
}

// write sends c's buffer until c is dropped, fails or the server closes.
func (w *WebSocket) write(c *wsClient) {
	defer w.remove(c)
	for {
		select {
		case msg := <-c.send:
			if !w.send(c, msg) {
				return
			}
		case <-c.kill:
			_ = c.conn.Close(websocket.StatusPolicyViolation, "slow consumer: buffer full")
			return
		case <-w.done:
			// What Consume handed over before Close still goes out, then the goodbye.
			for {
				select {
				case msg := <-c.send:
					if !w.send(c, msg) {
						return
					}
				default:
					_ = c.conn.Close(websocket.StatusGoingAway, "server closing")
					return
				}
			}
		}
	}
}

// send writes one message to c within write_timeout; on failure it closes c and says false.
func (w *WebSocket) send(c *wsClient, msg []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.WriteTimeout)
	err := c.conn.Write(ctx, websocket.MessageText, msg)
	cancel()
	if err != nil {
		_ = c.conn.CloseNow()
		return false
	}
	w.sent.Add(1)
	return true
}

// read handles c's registration messages until the connection ends.
func (w *WebSocket) read(c *wsClient) {
	defer w.wg.Done()
	defer c.drop()
	for {
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			return
		}
		var m struct {
			Type    string    `json:"type"`
			Filters wsFilters `json:"filters"`
		}
		if json.Unmarshal(data, &m) != nil || m.Type != "register" {
			continue
		}
		c.mu.Lock()
		c.registered, c.filters = true, m.Filters
		c.mu.Unlock()
		select {
		case c.send <- mustJSON(map[string]any{"type": "registered", "message": "registration successful", "filters": m.Filters}):
		default:
		}
	}
}

func (c *wsClient) drop() { c.once.Do(func() { close(c.kill) }) }

func (w *WebSocket) remove(c *wsClient) {
	c.drop()
	w.mu.Lock()
	delete(w.clients, c)
	w.gauge.Set(float64(len(w.clients)))
	w.mu.Unlock()
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // maps of strings and slices: cannot fail
	return b
}

// Consume hands every record to every registered client whose filters it passes, without
// waiting; a client whose buffer is full is dropped.
func (w *WebSocket) Consume(_ context.Context, l *ledger.Ledger, recs []component.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range recs {
		b, err := encode(r)
		if err != nil {
			return fmt.Errorf("SaveToWebSocket: ledger %d: %w", l.Sequence(), err)
		}
		var f map[string]any // decoded once, when a client filters
		for c := range w.clients {
			c.mu.Lock()
			reg, flt := c.registered, c.filters
			c.mu.Unlock()
			if !reg {
				continue
			}
			if flt.active() {
				if f == nil {
					f = fields(b)
				}
				if !flt.match(r.RecordKind(), f) {
					continue
				}
			}
			select {
			case c.send <- b:
			default:
				delete(w.clients, c)
				c.drop()
				w.dropped.Add(1)
				w.dropC.Inc()
				w.metrics.Dropped.Inc()
				w.log.Warn("websocket client dropped: its buffer is full", "buffer", w.cfg.MaxQueueSize)
			}
		}
		w.metrics.Records.Inc()
		w.metrics.Bytes.Add(float64(len(b)))
	}
	w.gauge.Set(float64(len(w.clients)))
	w.records.Add(int64(len(recs)))
	w.ledgers.Add(1)
	w.last.Store(l.Sequence())
	w.metrics.Ledgers.Inc()
	return nil
}

func (f wsFilters) active() bool {
	return len(f.Types) > 0 || len(f.AccountIDs) > 0 || len(f.AssetCodes) > 0
}

var accountFields = []string{"buyer_account_id", "seller_account_id", "source_account_id", "destination_account_id", "account_id", "from", "to"}

func (f wsFilters) match(kind string, m map[string]any) bool {
	in := func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	if len(f.Types) > 0 && !in(f.Types, kind) && !in(f.Types, text(m, "type")) {
		return false
	}
	if len(f.AccountIDs) > 0 {
		ok := false
		for _, k := range accountFields {
			if v := text(m, k); v != "" && in(f.AccountIDs, v) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.AssetCodes) > 0 {
		if v, has := m["asset_code"]; has && v != nil && !in(f.AssetCodes, text(m, "asset_code")) {
			return false
		}
	}
	return true
}

// Flush does nothing: records are handed to the clients in Consume.
func (w *WebSocket) Flush(context.Context) error { return nil }

// Close stops the server, sends each client what its buffer still holds (each message within
// write_timeout), closes it with "going away" and waits for their goroutines.
func (w *WebSocket) Close(ctx context.Context) error {
	w.mu.Lock()
	select {
	case <-w.done:
		w.mu.Unlock()
		return nil
	default:
		close(w.done)
	}
	w.mu.Unlock()
	var err error
	if w.srv != nil {
		err = w.srv.Shutdown(ctx)
	}
	w.wg.Wait()
	if err != nil {
		return fmt.Errorf("SaveToWebSocket: stopping the server: %w", err)
	}
	return nil
}

// Stats reports records_broadcast, messages_sent, clients, clients_dropped and last_ledger.
func (w *WebSocket) Stats() map[string]float64 {
	w.mu.Lock()
	n := len(w.clients)
	w.mu.Unlock()
	return map[string]float64{
		"records_broadcast": float64(w.records.Load()),
		"messages_sent":     float64(w.sent.Load()),
		"clients":           float64(n),
		"clients_dropped":   float64(w.dropped.Load()),
		"last_ledger":       float64(w.last.Load()),
	}
}
