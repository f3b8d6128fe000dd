package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// JournalType is the type name of JournalConsumer.
const JournalType = "JournalConsumer"

// JournalConsumer is a sink that writes down when it ran: every incarnation of a pipeline
// appends to <dir>/<pipeline>.journal, one line per event,
//
//	<unix ns> <pid> open            Start: the incarnation is about to take ledgers
//	<unix ns> <pid> ledger <seq>    each Consume
//	<unix ns> <pid> close           Close: it took its last ledger
//
// Each line is one write(2) of an O_APPEND file and shorter than PIPE_BUF, so the lines of
// processes sharing a journal never mix. The fleet test reads the journals to check that no
// pipeline ever ran in two processes at once. Config: dir (required).
type JournalConsumer struct {
	path string

	mu sync.Mutex
	f  *os.File
}

// NewJournalConsumer is the JournalConsumer constructor.
func NewJournalConsumer(cfg map[string]any, env component.Env) (component.Consumer, error) {
	var c struct {
		Dir string `mapstructure:"dir"`
	}
	if err := component.Decode(cfg, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", JournalType, err)
	}
	if c.Dir == "" {
		return nil, errors.New(JournalType + ": dir is required")
	}
	return &JournalConsumer{path: filepath.Join(c.Dir, env.Pipeline+".journal")}, nil
}

// Start implements component.Starter: opens the journal and writes "open".
func (j *JournalConsumer) Start(context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		return nil
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", JournalType, err)
	}
	j.f = f
	return j.write("open")
}

func (j *JournalConsumer) write(event string) error {
	line := strconv.FormatInt(time.Now().UnixNano(), 10) + " " + strconv.Itoa(os.Getpid()) + " " + event + "\n"
	if _, err := j.f.WriteString(line); err != nil {
		return fmt.Errorf("%s: writing %s: %w", JournalType, strings.TrimSpace(line), err)
	}
	return nil
}

// Consume implements component.Consumer.
func (j *JournalConsumer) Consume(ctx context.Context, l *ledger.Ledger, _ []component.Record) error {
	if err := j.Start(ctx); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.write("ledger " + strconv.FormatUint(uint64(l.Sequence()), 10))
}

// Flush implements component.Consumer.
func (j *JournalConsumer) Flush(context.Context) error { return nil }

// Close implements component.Consumer: writes "close".
func (j *JournalConsumer) Close(context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := errors.Join(j.write("close"), j.f.Close())
	j.f = nil
	return err
}
