package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/stellar/go-stellar-sdk/support/compressxdr"
	"github.com/stellar/go-stellar-sdk/support/datastore"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// closeTimes finds ledgers by close time in a galexie datastore. The SDK has no such helper
// for a datastore (historyarchive.LedgerForTime does it for history archives), so it searches
// ledger sequences (galloping back from the newest, then binary): each probe asks the datastore for the file at or below a
// sequence (one listing from that key: galexie keys sort newest first, as the SDK's
// FindLatestLedgerUpToSequence uses them) and reads the close time of that file's last
// ledger, from the object metadata galexie writes (end-ledger-close-time) or, without it,
// from the file itself (decompressed, read through the XDR views; no full decode). Close times
// rise strictly with the sequence, so "the last ledger of the file at or below s closed at or
// after t" is monotone in s, also across gaps in the datastore.
type closeTimes struct {
	store datastore.DataStore
	// schema names keys (GetObjectKeyFromSequenceNumber); only their order matters here.
	schema datastore.DataStoreSchema

	lastOf map[string]int64   // file key -> close time of its last ledger
	allOf  map[string][]int64 // file key -> close time of each of its ledgers
	reads  int                // files downloaded (for tests)
	lists  int                // listings (probes) made (for tests)
}

func newCloseTimes(store datastore.DataStore, schema datastore.DataStoreSchema) *closeTimes {
	return &closeTimes{store: store, schema: schema, lastOf: map[string]int64{}, allOf: map[string][]int64{}}
}

// fileAtOrBelow returns the datastore's file holding seq, or else the nearest one below it.
func (c *closeTimes) fileAtOrBelow(ctx context.Context, seq uint32) (datastore.LedgerFile, bool, error) {
	c.lists++
	startAfter := ""
	if b := c.schema.GetSequenceNumberEndBoundary(seq); b < math.MaxUint32 {
		startAfter = c.schema.GetObjectKeyFromSequenceNumber(b + 1)
	}
	for f, err := range datastore.LedgerFileIter(ctx, c.store, startAfter, "") {
		if err != nil {
			return f, false, fmt.Errorf("listing the datastore from ledger %d down: %w", seq, err)
		}
		return f, true, nil
	}
	return datastore.LedgerFile{}, false, nil
}

// lastClose is the close time of f's last ledger.
func (c *closeTimes) lastClose(ctx context.Context, f datastore.LedgerFile) (int64, error) {
	if ct, ok := c.lastOf[f.Key]; ok {
		return ct, nil
	}
	if md, err := c.store.GetFileMetadata(ctx, f.Key); err == nil {
		if m, err := datastore.NewMetaDataFromMap(md); err == nil && m.EndLedger == f.High && m.EndLedgerCloseTime > 0 {
			c.lastOf[f.Key] = m.EndLedgerCloseTime
			return m.EndLedgerCloseTime, nil
		}
	}
	all, err := c.closes(ctx, f)
	if err != nil {
		return 0, err
	}
	return all[len(all)-1], nil
}

// closes reads f and returns the close time of each of its ledgers, f.Low first.
func (c *closeTimes) closes(ctx context.Context, f datastore.LedgerFile) ([]int64, error) {
	if all, ok := c.allOf[f.Key]; ok {
		return all, nil
	}
	r, _, err := c.store.GetFile(ctx, f.Key)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Key, err)
	}
	defer r.Close()
	c.reads++
	zr, err := compressxdr.DefaultCompressor.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Key, err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Key, err)
	}
	metas, err := xdr.LedgerCloseMetaBatchView(b).LedgerCloseMetas()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Key, err)
	}
	var all []int64
	next := f.Low
	for v, err := range metas.Iter() {
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.Key, err)
		}
		seq, err := v.LedgerSequence()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.Key, err)
		}
		ct, err := v.LedgerCloseTime()
		if err != nil {
			return nil, fmt.Errorf("reading ledger %d in %s: %w", seq, f.Key, err)
		}
		if seq != next {
			return nil, fmt.Errorf("reading %s: ledger %d where %d was expected", f.Key, seq, next)
		}
		next++
		all = append(all, ct)
	}
	if len(all) == 0 || next-1 != f.High {
		return nil, fmt.Errorf("reading %s: it holds %d ledgers, its name says %d-%d", f.Key, len(all), f.Low, f.High)
	}
	c.allOf[f.Key], c.lastOf[f.Key] = all, all[len(all)-1]
	return all, nil
}

// minLedgerInterval bounds how often a network closes ledgers (pubnet closes one every 5 to 6
// s): counting back (now - t) / 4 s ledgers from the newest usually lands before t, so the
// search starts in a bracket near t instead of over the whole chain.
const minLedgerInterval = 4

// first returns the first ledger up to latest that the datastore holds and that closed at or
// after t (strictly after with strict), with its close time; found is false when none did.
// It gallops back from latest (an estimate from the close times, doubled while it is not far
// enough) and then binary searches the bracket: a recent t costs a few probes near the tip.
func (c *closeTimes) first(ctx context.Context, t time.Time, strict bool, latest uint32) (seq uint32, closed int64, found bool, err error) {
	match := func(ct int64) bool {
		if strict {
			return time.Unix(ct, 0).After(t)
		}
		return !time.Unix(ct, 0).Before(t)
	}
	// probe reports whether the last ledger of the file at or below s closed at or after t
	// (monotone in s), and that close time.
	probe := func(s uint32) (bool, int64, error) {
		f, ok, err := c.fileAtOrBelow(ctx, s)
		if err != nil || !ok {
			return false, 0, err
		}
		ct, err := c.lastClose(ctx, f)
		if err != nil {
			return false, 0, err
		}
		return match(ct), ct, nil
	}
	if latest < 2 {
		return 0, 0, false, nil
	}
	ok, newest, err := probe(latest)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	// Bracket [lo, hi]: the probe holds at hi; below lo it does not.
	hi, lo := latest, uint32(2)
	step := uint64(1)
	if d := newest - t.Unix(); d > minLedgerInterval {
		step = uint64(d / minLedgerInterval)
	}
	for uint64(hi) > uint64(lo)+step {
		s := hi - uint32(step) //nolint:gosec // step < hi - lo
		ok, _, err := probe(s)
		if err != nil {
			return 0, 0, false, err
		}
		if !ok {
			lo = s + 1
			break
		}
		hi, step = s, 2*step
	}
	var probeErr error
	i := sort.Search(int(hi-lo), func(i int) bool {
		if probeErr != nil {
			return true
		}
		ok, _, err := probe(lo + uint32(i)) //nolint:gosec // i < hi - lo
		if err != nil {
			probeErr = err
			return true
		}
		return ok
	})
	if probeErr != nil {
		return 0, 0, false, probeErr
	}
	f, ok, err := c.fileAtOrBelow(ctx, lo+uint32(i)) //nolint:gosec // as above
	if err != nil {
		return 0, 0, false, err
	}
	if !ok {
		return 0, 0, false, errors.New("the datastore changed while it was searched")
	}
	all, err := c.closes(ctx, f)
	if err != nil {
		return 0, 0, false, err
	}
	for j, ct := range all {
		if match(ct) {
			return f.Low + uint32(j), ct, true, nil //nolint:gosec // j < ledgers per file
		}
	}
	return 0, 0, false, fmt.Errorf("%s: its metadata and its ledgers disagree about close times", f.Key)
}

// heldBelow reports whether the datastore holds a ledger before seq.
func (c *closeTimes) heldBelow(ctx context.Context, seq uint32) (bool, error) {
	if seq <= 2 {
		return false, nil
	}
	_, ok, err := c.fileAtOrBelow(ctx, seq-1)
	return ok, err
}
