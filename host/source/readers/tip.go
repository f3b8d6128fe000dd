package readers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/stellar/go-stellar-sdk/support/datastore"
	sdklog "github.com/stellar/go-stellar-sdk/support/log"
)

// tipState is a datastore's newest ledger as its poller last saw it.
type tipState struct {
	mu  sync.Mutex
	seq uint32
	err string // the last poll's error, "" after a success
}

func (t *tipState) get() (uint32, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq, t.err
}

func (t *tipState) set(seq uint32, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.err = err.Error()
		return
	}
	t.seq, t.err = seq, ""
}

// pollTip asks the datastore for its newest ledger every TipInterval until ctx ends: the one
// poller of the datastore, whatever the number of pipelines reading it.
func (g *group) pollTip(ctx context.Context) {
	interval := g.reg.opts.TipInterval
	tip := g.spec.Tip
	if tip == nil {
		var store datastore.DataStore
		defer func() {
			if store != nil {
				_ = store.Close()
			}
		}()
		tip = func(ctx context.Context) (uint32, error) {
			if store == nil {
				s, err := datastore.NewDataStore(ctx, g.spec.DataStore)
				if err != nil {
					return 0, fmt.Errorf("opening the datastore: %w", err)
				}
				store = s
			}
			return datastore.FindLatestLedgerSequence(ctx, store)
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, interval+10*time.Second)
		seq, err := tip(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		g.tip.set(seq, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SDKLogger is the SDK's logger for a stream (every source's and reader's): its warnings and
// errors (teardown problems) become warnings of log, so that they are redacted like every
// other line of the pipeline (host/redact.go) or of the shared reader (Registry.readerLogger)
// instead of going to stderr past it.
func SDKLogger(log *slog.Logger) *sdklog.Entry {
	l := sdklog.New()
	l.SetLevel(sdklog.WarnLevel)
	l.DisableTimestamp()
	l.DisableColors()
	l.SetOutput(slogWriter{log})
	return l
}

// slogWriter writes each line it is given as a warning of log.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	if w.log != nil {
		for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
			w.log.Warn("stellar sdk: " + line)
		}
	}
	return len(p), nil
}
