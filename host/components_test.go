package host

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/loader"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// Test components: fault injection around real ledgers (re-sequenced copies of pubnet ledger
// 58752000 that the SDK ships), registered in a test registry.

var (
	realOnce sync.Once
	realRaw  []byte
	realErr  error
)

// realLedger returns a real pubnet ledger re-sequenced to seq (a fresh copy).
func realLedger(seq uint32) (*ledger.Ledger, error) {
	realOnce.Do(func() {
		var m map[uint32][]byte
		m, realErr = fixture.RealLedgers()
		if realErr == nil {
			realRaw = m[fixture.Ledger58752000]
		}
	})
	if realErr != nil {
		return nil, realErr
	}
	raw, err := fixture.Resequence(realRaw, seq, time.Unix(1_700_000_000+int64(seq)*5, 0))
	if err != nil {
		return nil, err
	}
	return ledger.New(raw, nil)
}

// lab records what test components saw, keyed by "<pipeline>/<component name>".
type lab struct {
	mu       sync.Mutex
	emitted  map[string][]uint32
	consumed map[string][]uint32
	records  map[string]int
	release  chan struct{}   // Block consumers wait for it (ignoring their context)
	blocked  chan string     // a Block consumer reports that it is stuck
	starts   map[string]int  // Record consumers' Start calls, by pipeline/name
	failedAt map[string]bool // FailOnceAt failures done, by pipeline/name
}

func newLab() *lab {
	return &lab{emitted: map[string][]uint32{}, consumed: map[string][]uint32{}, records: map[string]int{},
		release: make(chan struct{}), blocked: make(chan string, 16), starts: map[string]int{}, failedAt: map[string]bool{}}
}

func (l *lab) Emitted(key string) []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.emitted[key])
}

func (l *lab) Consumed(key string) []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.consumed[key])
}

// registry returns a registry of the test components bound to l.
func (l *lab) registry(t testing.TB) *component.Registry {
	r := component.NewRegistry()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.AddSource(l.newMemSource, "MemSource"))
	must(r.AddProcessor(newPanicProcessor, "Panic"))
	must(r.AddProcessor(newTagProcessor, "Tag"))
	must(r.AddProcessor(newDecodeProcessor, "Decode"))
	must(r.AddConsumer(l.newRecordConsumer, "Record"))
	return r
}

type memSourceConfig struct {
	StartLedger uint32        `mapstructure:"start_ledger"`
	EndLedger   uint32        `mapstructure:"end_ledger"`
	Interval    time.Duration `mapstructure:"interval"`
	FailAfter   int           `mapstructure:"fail_after"` // Run returns an error after that many ledgers
}

// memSource emits re-sequenced real ledgers from memory.
type memSource struct {
	lab *lab
	key string
	cfg memSourceConfig
}

func (l *lab) newMemSource(cfg map[string]any, env component.Env) (component.Source, error) {
	s := &memSource{lab: l, key: env.Pipeline + "/" + env.Name}
	if err := component.Decode(cfg, &s.cfg); err != nil {
		return nil, err
	}
	if s.cfg.StartLedger == 0 {
		return nil, errors.New("start_ledger is required")
	}
	return s, nil
}

func (s *memSource) Range() (uint32, uint32) { return s.cfg.StartLedger, s.cfg.EndLedger }
func (s *memSource) Close() error            { return nil }

func (s *memSource) Run(ctx context.Context, from uint32, emit func(*ledger.Ledger) error) error {
	n := 0
	for seq := from; s.cfg.EndLedger == 0 || seq <= s.cfg.EndLedger; seq++ {
		if s.cfg.FailAfter > 0 && n >= s.cfg.FailAfter {
			return errors.New("injected source failure")
		}
		l, err := realLedger(seq)
		if err != nil {
			return err
		}
		if err := emit(l); err != nil {
			return err
		}
		n++
		s.lab.mu.Lock()
		s.lab.emitted[s.key] = append(s.lab.emitted[s.key], seq)
		s.lab.mu.Unlock()
		if s.cfg.Interval > 0 {
			select {
			case <-time.After(s.cfg.Interval):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

type panicProcessor struct{}

func newPanicProcessor(cfg map[string]any, _ component.Env) (component.Processor, error) {
	var c struct{}
	return panicProcessor{}, component.Decode(cfg, &c)
}

func (panicProcessor) Process(_ context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	panic(fmt.Sprintf("injected panic on ledger %d", l.Sequence()))
}

type tagRecord struct {
	Seq uint32 `json:"seq"`
	N   int    `json:"n"`
}

func (r tagRecord) RecordKind() string { return "tag" }
func (r tagRecord) NaturalKey() string { return fmt.Sprintf("%d-%d", r.Seq, r.N) }

// tagProcessor emits per_ledger records per ledger, read from the view (no decode).
type tagProcessor struct {
	cfg struct {
		PerLedger int `mapstructure:"per_ledger"`
	}
	mu   sync.Mutex
	seen int
}

func newTagProcessor(cfg map[string]any, _ component.Env) (component.Processor, error) {
	p := &tagProcessor{}
	p.cfg.PerLedger = 1
	return p, component.Decode(cfg, &p.cfg)
}

func (p *tagProcessor) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	seq, err := l.View().LedgerSequence()
	if err != nil {
		return nil, err
	}
	out := append([]component.Record(nil), in...)
	for i := range p.cfg.PerLedger {
		out = append(out, tagRecord{Seq: seq, N: i})
	}
	p.mu.Lock()
	p.seen++
	p.mu.Unlock()
	return out, nil
}

func (p *tagProcessor) Stats() map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return map[string]float64{"ledgers_tagged": float64(p.seen)}
}

type recordConsumerConfig struct {
	File       string        `mapstructure:"file"`       // append each ledger durably (fsync)
	Positioned bool          `mapstructure:"positioned"` // report the file's last ledger as Position
	Block      bool          `mapstructure:"block"`      // block in the first Consume until lab.release, ignoring ctx
	FailStart  bool          `mapstructure:"fail_start"`
	FailStarts int           `mapstructure:"fail_starts"`  // the first n Starts (over incarnations) fail
	FailOnceAt uint32        `mapstructure:"fail_once_at"` // Consume of this ledger fails, the first time only
	Delay      time.Duration `mapstructure:"delay"`
}

// recordConsumer records every ledger it accepts in the lab and, with file, durably on disk.
type recordConsumer struct {
	lab  *lab
	key  string
	cfg  recordConsumerConfig
	f    *os.File
	once sync.Once
}

type positionedConsumer struct{ *recordConsumer }

func (c positionedConsumer) Position(context.Context) (uint32, bool, error) {
	seqs, err := readLedgerFile(c.cfg.File)
	if err != nil || len(seqs) == 0 {
		return 0, false, err
	}
	return slices.Max(seqs), true, nil
}

func (l *lab) newRecordConsumer(cfg map[string]any, env component.Env) (component.Consumer, error) {
	c := &recordConsumer{lab: l, key: env.Pipeline + "/" + env.Name}
	if err := component.Decode(cfg, &c.cfg); err != nil {
		return nil, err
	}
	if c.cfg.Positioned {
		if c.cfg.File == "" {
			return nil, errors.New("positioned needs file")
		}
		return positionedConsumer{c}, nil
	}
	return c, nil
}

func (c *recordConsumer) Start(context.Context) error {
	if c.cfg.FailStart {
		return errors.New("injected start failure")
	}
	c.lab.mu.Lock()
	c.lab.starts[c.key]++
	n := c.lab.starts[c.key]
	c.lab.mu.Unlock()
	if n <= c.cfg.FailStarts {
		return fmt.Errorf("injected start failure %d of %d", n, c.cfg.FailStarts)
	}
	if c.cfg.File != "" {
		f, err := os.OpenFile(c.cfg.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		c.f = f
	}
	return nil
}

func (c *recordConsumer) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	if c.cfg.Block {
		blocked := false
		c.once.Do(func() { blocked = true })
		if blocked {
			c.lab.blocked <- c.key
			<-c.lab.release // stuck: ignores ctx
		}
	}
	if c.cfg.FailOnceAt != 0 && l.Sequence() == c.cfg.FailOnceAt {
		c.lab.mu.Lock()
		done := c.lab.failedAt[c.key]
		c.lab.failedAt[c.key] = true
		c.lab.mu.Unlock()
		if !done {
			return fmt.Errorf("injected failure at ledger %d", l.Sequence())
		}
	}
	if c.cfg.Delay > 0 {
		select {
		case <-time.After(c.cfg.Delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if c.f != nil {
		if _, err := fmt.Fprintf(c.f, "%d\n", l.Sequence()); err != nil {
			return err
		}
		if err := c.f.Sync(); err != nil {
			return err
		}
	}
	c.lab.mu.Lock()
	c.lab.consumed[c.key] = append(c.lab.consumed[c.key], l.Sequence())
	c.lab.records[c.key] += len(recs)
	c.lab.mu.Unlock()
	return nil
}

func (c *recordConsumer) Flush(context.Context) error { return nil }

func (c *recordConsumer) Close(context.Context) error {
	if c.f != nil {
		return c.f.Close()
	}
	return nil
}

func readLedgerFile(path string) ([]uint32, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []uint32
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n, err := strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 32)
		if err != nil {
			return nil, err
		}
		out = append(out, uint32(n))
	}
	return out, sc.Err()
}

// def builds a pipeline definition as the loader would (file, lines, hash).
func def(name string, src loader.Component, procs []loader.Component, cons []loader.Component) *loader.Pipeline {
	p := &loader.Pipeline{Name: name, File: filepath.Join("configs", name+".yaml"), Line: 2, Source: src,
		Processors: procs, Consumers: cons}
	line := 3
	p.Source.Line = line
	for i := range p.Processors {
		line++
		p.Processors[i].Line = line
	}
	for i := range p.Consumers {
		line++
		p.Consumers[i].Line = line
	}
	rehash(p)
	return p
}

func rehash(p *loader.Pipeline) {
	sum := sha256.Sum256(fmt.Appendf(nil, "%v|%v|%v|%v|%s", p.Source, p.Processors, p.Consumers, p.Name, p.Restart))
	p.Hash = hex.EncodeToString(sum[:])
}

func comp_(typ string, kv ...any) loader.Component {
	cfg := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		cfg[kv[i].(string)] = kv[i+1]
	}
	return loader.Component{Type: typ, Config: cfg}
}

func procs(c ...loader.Component) []loader.Component { return c }

// decodeProcessor asks for the full decode twice per ledger: the pipeline must decode once.
type decodeProcessor struct{}

func newDecodeProcessor(cfg map[string]any, _ component.Env) (component.Processor, error) {
	var c struct{}
	return decodeProcessor{}, component.Decode(cfg, &c)
}

func (decodeProcessor) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	for range 2 {
		lcm, err := l.Decoded()
		if err != nil {
			return nil, err
		}
		if got := lcm.LedgerSequence(); got != l.Sequence() {
			return nil, fmt.Errorf("decoded ledger %d, view says %d", got, l.Sequence())
		}
	}
	return in, nil
}
