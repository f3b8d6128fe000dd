package source

import (
	"context"
	"fmt"

	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"
	"github.com/stellar/go-stellar-sdk/support/datastore"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/source/readers"
)

// runShared reads through the daemon's shared readers (host/source/readers): the pipeline
// subscribes to the reader of its datastore and window, which downloads, decompresses and
// copies each ledger once for every pipeline reading it and polls the datastore's tip once.
// The subscription is closed when Run returns (restart, edit, removal, drain): the reader goes
// on for the others.
func (s *storageSource) runShared(ctx context.Context, from, end uint32, dsCfg datastore.DataStoreConfig,
	bsCfg ledgerbackend.BufferedStorageBackendConfig, emit func(*ledger.Ledger) error) error {
	spec := readers.Spec{Kind: s.kind, DataStore: dsCfg, Buffer: bsCfg, CapLedgers: s.capLedgers(dsCfg)}
	sub, err := s.env.Readers.Subscribe(spec, from, end, s.env.Pipeline, s.env.Decodes)
	if err != nil {
		return fmt.Errorf("%s: subscribing to the shared reader: %w", s.typeName, err)
	}
	view := &readerView{tip: sub.Tip, state: func() component.ReaderState { return readerState(sub.State()) }}
	s.stats.reader.Store(view)
	s.shared.Store(view)
	defer sub.Close()
	st := sub.State()
	s.env.Logger.Info("source reading through a shared reader", "type", s.typeName, "storage", s.kind,
		"from", from, "to", end, "reader", st.Reader, "mode", st.Mode, "subscribers", st.Subscribers)
	for seq := from; end == 0 || seq <= end; seq++ {
		l, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: reading ledger %d: %w", s.typeName, seq, err)
		}
		s.stats.observe(l)
		if err := emit(l); err != nil {
			return err
		}
	}
	return nil
}

// capLedgers is the cap of the source's share of the ledger budget: buffer_size objects when
// the config gives it (0: the fair share only).
func (s *storageSource) capLedgers(dsCfg datastore.DataStoreConfig) int64 {
	if s.bufferSize == 0 {
		return 0
	}
	return int64(s.bufferSize) * int64(max(dsCfg.Schema.LedgersPerFile, 1))
}

// ReaderState implements component.ReaderReporter: the shared reader of the current (or last)
// run, or mode own with `share: false`.
func (s *storageSource) ReaderState() component.ReaderState {
	if v := s.shared.Load(); v != nil {
		return v.state()
	}
	if !s.share || s.env.Readers == nil {
		return component.ReaderState{Mode: readers.ModeOwn, Subscribers: 1,
			ObjectsRead: int64(s.stats.objects.Load()), BytesRead: int64(s.stats.bytes.Load()), //nolint:gosec // counters
			LedgersRead: int64(s.stats.processed.Load())} //nolint:gosec // counters
	}
	return component.ReaderState{Mode: readers.ModeDetached}
}

func readerState(st readers.State) component.ReaderState {
	return component.ReaderState{
		Reader: st.Reader, Datastore: st.Datastore, Mode: st.Mode, Subscribers: st.Subscribers,
		ObjectsRead: st.Stats.Objects, BytesRead: st.Stats.Bytes, LedgersRead: st.Stats.Ledgers,
		DecodesPerformed: st.Stats.Performed, DecodesShared: st.Stats.Shared,
	}
}
