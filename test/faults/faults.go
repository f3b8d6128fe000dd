// Package faults provides fault-injecting pipeline components for cdpd's reliability suite
// (test/reliability): a processor, FaultInjector, and a consumer, FaultyConsumer, that panic,
// block, fail or slow down on chosen ledgers, and a witness sink, JournalConsumer (journal.go),
// that writes down which process ran a pipeline when. They are compiled into cdpd only with the build
// tag `faultinject` (host/builtin/faults.go registers them); a production binary never holds
// them.
//
// Both take the same config:
//
//	mode:  panic | block | error | slow | pass   (the consumer: block | error | slow | pass)
//	after: N        the first N ledgers of each incarnation pass untouched (default 0)
//	every: N        then every Nth ledger is faulted (default 1: every one)
//	delay: 200ms    how long "slow" sleeps per faulted ledger (default 1s)
//
// "pass" never faults: FaultyConsumer{mode: pass} is a null sink (the suite's default
// consumer, quieter than StdoutConsumer). "block" blocks forever and ignores cancellation, like a call stuck in a syscall or a lock:
// the host can only abandon it at its drain deadline. "slow" sleeps delay but honours
// cancellation. Counting restarts with every incarnation (a restarted pipeline constructs new
// components).
package faults

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// Type names under which Register adds the components.
const (
	InjectorType = "FaultInjector"
	ConsumerType = "FaultyConsumer"
)

// Modes.
const (
	ModePanic = "panic"
	ModeBlock = "block"
	ModeError = "error"
	ModeSlow  = "slow"
	ModePass  = "pass" // no fault: a null processor / consumer
)

// Config is the configuration of both components.
type Config struct {
	Mode  string        `mapstructure:"mode"`
	After int           `mapstructure:"after"`
	Every int           `mapstructure:"every"`
	Delay time.Duration `mapstructure:"delay"`
}

func decode(kind string, cfg map[string]any, modes ...string) (Config, error) {
	c := Config{Every: 1, Delay: time.Second}
	if err := component.Decode(cfg, &c); err != nil {
		return c, fmt.Errorf("%s: %w", kind, err)
	}
	ok := false
	for _, m := range modes {
		ok = ok || c.Mode == m
	}
	if !ok {
		return c, fmt.Errorf("%s: mode must be one of %v, got %q", kind, modes, c.Mode)
	}
	if c.After < 0 || c.Every < 1 {
		return c, fmt.Errorf("%s: after must be >= 0 and every >= 1, got after %d every %d", kind, c.After, c.Every)
	}
	if c.Delay < 0 {
		return c, fmt.Errorf("%s: delay must be >= 0, got %s", kind, c.Delay)
	}
	return c, nil
}

// injector is the shared fault logic.
type injector struct {
	kind string
	cfg  Config

	mu      sync.Mutex
	seen    int
	faulted int
	blocked bool
}

// hit counts one ledger and reports whether it is to be faulted.
func (f *injector) hit() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen++
	n := f.seen - f.cfg.After
	if n <= 0 || n%f.cfg.Every != 0 {
		return false
	}
	f.faulted++
	return true
}

// fault applies the configured fault for ledger seq.
func (f *injector) fault(ctx context.Context, seq uint32) error {
	switch f.cfg.Mode {
	case ModePanic:
		panic(fmt.Sprintf("%s: injected panic at ledger %d", f.kind, seq))
	case ModeError:
		return fmt.Errorf("%s: injected error at ledger %d", f.kind, seq)
	case ModeSlow:
		t := time.NewTimer(f.cfg.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	case ModeBlock:
		f.mu.Lock()
		f.blocked = true
		f.mu.Unlock()
		select {} // hung for good: the host must abandon this goroutine
	}
	return nil
}

// Stats implements component.StatsReporter: ledgers seen and faulted, 1 while blocked.
func (f *injector) Stats() map[string]float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := 0.0
	if f.blocked {
		b = 1
	}
	return map[string]float64{"ledgers_seen": float64(f.seen), "faults": float64(f.faulted), "blocked": b}
}

// FaultInjector is a processor that passes its input records through and faults on the
// configured ledgers.
type FaultInjector struct{ injector }

// NewFaultInjector is the FaultInjector constructor.
func NewFaultInjector(cfg map[string]any, _ component.Env) (component.Processor, error) {
	c, err := decode(InjectorType, cfg, ModePanic, ModeBlock, ModeError, ModeSlow, ModePass)
	if err != nil {
		return nil, err
	}
	return &FaultInjector{injector{kind: InjectorType, cfg: c}}, nil
}

// Process implements component.Processor.
func (p *FaultInjector) Process(ctx context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	if p.cfg.Mode != ModePass && p.hit() {
		if err := p.fault(ctx, l.Sequence()); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// FaultyConsumer is a consumer that accepts everything and faults on the configured ledgers.
type FaultyConsumer struct{ injector }

// NewFaultyConsumer is the FaultyConsumer constructor.
func NewFaultyConsumer(cfg map[string]any, _ component.Env) (component.Consumer, error) {
	c, err := decode(ConsumerType, cfg, ModeBlock, ModeError, ModeSlow, ModePass)
	if err != nil {
		return nil, err
	}
	return &FaultyConsumer{injector{kind: ConsumerType, cfg: c}}, nil
}

// Consume implements component.Consumer.
func (c *FaultyConsumer) Consume(ctx context.Context, l *ledger.Ledger, _ []component.Record) error {
	if c.cfg.Mode != ModePass && c.hit() {
		return c.fault(ctx, l.Sequence())
	}
	return nil
}

// Flush implements component.Consumer.
func (c *FaultyConsumer) Flush(context.Context) error { return nil }

// Close implements component.Consumer.
func (c *FaultyConsumer) Close(context.Context) error { return nil }

// Register adds FaultInjector, FaultyConsumer and JournalConsumer (journal.go) to r.
func Register(r *component.Registry) error {
	if err := r.AddProcessor(NewFaultInjector, InjectorType); err != nil {
		return err
	}
	if err := r.AddConsumer(NewJournalConsumer, JournalType); err != nil {
		return err
	}
	return r.AddConsumer(NewFaultyConsumer, ConsumerType)
}
