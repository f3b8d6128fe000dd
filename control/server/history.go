package server

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// history is one service's bounded heartbeat history, delta-encoded: base is the full metric
// state at the oldest kept sample, every later sample stores only the metrics that changed
// (as (key index, value) pairs over the interned names in keys), and last is the state at the
// newest sample. A sample's metrics are the service's cumulative merged metrics, as the status
// shows them. Guarded by mu.
type history struct {
	mu     sync.Mutex
	id     string
	keys   []string
	keyIdx map[string]uint32
	base   map[uint32]string
	last   map[uint32]string
	ring   []sample
	head   int
	n      int

	// The byte accounting (see cost): samples, interned names, and the base and newest
	// states. dropped: no longer in the server's map (expired, or emptied and removed).
	sampleBytes, keyBytes, stateBytes int64
	dropped                           bool
	// empty is n == 0, readable without mu: the heartbeat that gives an empty history its
	// first sample passes the service's whole merged metrics (an emptied history has forgotten
	// its state).
	empty atomic.Bool

	// persistence state: the newest unflushed samples are not in the database yet; baseDirty
	// means base changed (and older samples must be deleted there); rewrite asks for a full
	// rewrite after a failed flush.
	unflushed int
	baseDirty bool
	rewrite   bool
}

type sample struct {
	t      int64 // unix nanoseconds, strictly increasing
	status flowctlv1.HealthStatus
	cost   int32  // bytes accounted for it (sampleCost)
	delta  []byte // (uvarint key index, uvarint len, value bytes)*
}

// Byte accounting of the histories (Options.HistoryMaxBytes, HistoryTotalBytes). A sample
// costs sampleOverhead plus its database encoding (status byte, then every changed metric's
// name and value with their lengths), which is more than it takes in memory (a name is held
// once per service, a sample refers to it by index) and about what its database record
// takes: the accounting bounds both. Interned names and the base and newest states (a map
// entry per metric) are counted too.
const (
	sampleOverhead = 64 // the sample in memory (40 bytes) and its database key and element header (24)
	keyOverhead    = 48 // an interned name: string header, slice and map entries
	stateOverhead  = 48 // one metric of the base or newest state: map entry, string header
)

func uvarintLen(x int) int64 {
	n := int64(1)
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// size is the history's accounted bytes.
func (h *history) size() int64 { return h.sampleBytes + h.keyBytes + h.stateBytes }

// setState sets state[i] = v, keeping stateBytes.
func (h *history) setState(state map[uint32]string, i uint32, v string) {
	if old, ok := state[i]; ok {
		h.stateBytes += int64(len(v) - len(old))
	} else {
		h.stateBytes += stateOverhead + int64(len(v))
	}
	state[i] = v
}

// stateSize is the accounted size of a whole state map.
func stateSize(state map[uint32]string) int64 {
	var n int64
	for _, v := range state {
		n += stateOverhead + int64(len(v))
	}
	return n
}

func newHistory(id string) *history {
	h := &history{id: id, keyIdx: make(map[string]uint32), last: make(map[uint32]string)}
	h.empty.Store(true)
	return h
}

func (h *history) at(i int) *sample { return &h.ring[(h.head+i)%len(h.ring)] }

func (h *history) intern(k string) (uint32, bool) {
	if i, ok := h.keyIdx[k]; ok {
		return i, true
	}
	if len(h.keys) >= maxHistoryKeys {
		return 0, false // a service inventing endless metric names: keep the names we have
	}
	i := uint32(len(h.keys))
	h.keys = append(h.keys, k)
	h.keyIdx[k] = i
	h.keyBytes += keyOverhead + int64(len(k))
	return i, true
}

// add appends a sample for a heartbeat at t carrying metrics, then drops the oldest samples
// beyond max samples or maxBytes accounted bytes (a sample alone over maxBytes is not kept).
func (h *history) add(t int64, st flowctlv1.HealthStatus, metrics map[string]string, max int, maxBytes int64) {
	if h.n > 0 {
		if prev := h.at(h.n - 1).t; t <= prev {
			t = prev + 1
		}
	}
	var delta []byte
	cost := int64(sampleOverhead + 1)
	for k, v := range metrics {
		i, ok := h.intern(k)
		if !ok {
			continue
		}
		if old, ok := h.last[i]; ok && old == v {
			continue
		}
		h.setState(h.last, i, v)
		delta = binary.AppendUvarint(delta, uint64(i))
		delta = binary.AppendUvarint(delta, uint64(len(v)))
		delta = append(delta, v...)
		cost += uvarintLen(len(k)) + int64(len(k)) + uvarintLen(len(v)) + int64(len(v))
	}
	h.push(sample{t: t, status: st, cost: int32(min(cost, 1<<31-1)), delta: delta}, max)
	if h.n == 1 { // the oldest sample: its state is the base
		h.stateBytes -= stateSize(h.base)
		h.base = copyIdxMap(h.last)
		h.stateBytes += stateSize(h.base)
		h.baseDirty = true
	}
	h.unflushed = min(h.unflushed+1, h.n)
	h.trimBytes(maxBytes)
}

// trimBytes drops the oldest samples while the history is over maxBytes; an emptied history
// forgets its names and states too.
func (h *history) trimBytes(maxBytes int64) {
	for h.n > 0 && h.size() > maxBytes {
		h.evict()
	}
	h.clearIfEmpty()
}

// clearIfEmpty frees everything of a history without samples: the next sample starts afresh
// (its delta holds every metric it carries: the heartbeat passes the whole merged state).
func (h *history) clearIfEmpty() {
	if h.n > 0 {
		return
	}
	h.empty.Store(true)
	h.ring, h.head = nil, 0
	h.keys, h.keyIdx = nil, make(map[string]uint32)
	h.base, h.last = nil, make(map[uint32]string)
	h.sampleBytes, h.keyBytes, h.stateBytes = 0, 0, 0
}

// push appends s, growing the ring up to max samples and evicting the oldest beyond.
func (h *history) push(s sample, max int) {
	if h.n == len(h.ring) {
		if len(h.ring) < max {
			grown := make([]sample, min(max, max2(16, 2*len(h.ring))))
			for i := 0; i < h.n; i++ {
				grown[i] = *h.at(i)
			}
			h.ring, h.head = grown, 0
		} else {
			h.evict()
		}
	}
	h.ring[(h.head+h.n)%len(h.ring)] = s
	h.n++
	h.sampleBytes += int64(s.cost)
	h.empty.Store(false)
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// evict drops the oldest sample, folding the next one's changes into base.
func (h *history) evict() {
	h.sampleBytes -= int64(h.ring[h.head].cost)
	h.ring[h.head] = sample{}
	h.head = (h.head + 1) % len(h.ring)
	h.n--
	if h.n > 0 {
		if h.base == nil {
			h.base = make(map[uint32]string)
		}
		h.applyBase(h.at(0).delta)
	} else {
		h.stateBytes -= stateSize(h.base)
		h.base = nil
	}
	h.baseDirty = true
	h.unflushed = min(h.unflushed, h.n)
}

// applyBase applies a sample's delta to base, keeping stateBytes.
func (h *history) applyBase(delta []byte) {
	for len(delta) > 0 {
		i, n := binary.Uvarint(delta)
		delta = delta[n:]
		l, n := binary.Uvarint(delta)
		delta = delta[n:]
		h.setState(h.base, uint32(i), string(delta[:l]))
		delta = delta[l:]
	}
}

// pruneBefore drops samples older than cutoff (unix ns); it reports whether any was dropped.
func (h *history) pruneBefore(cutoff int64) bool {
	dropped := false
	for h.n > 0 && h.at(0).t < cutoff {
		h.evict()
		dropped = true
	}
	h.clearIfEmpty() // free the memory of a silent service
	return dropped
}

func applyDelta(state map[uint32]string, delta []byte) {
	for len(delta) > 0 {
		i, n := binary.Uvarint(delta)
		delta = delta[n:]
		l, n := binary.Uvarint(delta)
		delta = delta[n:]
		state[uint32(i)] = string(delta[:l])
		delta = delta[l:]
	}
}

func copyIdxMap(m map[uint32]string) map[uint32]string {
	c := make(map[uint32]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// read returns the samples at or after since (unix ns), with only the named metrics when
// names is not nil.
func (h *history) read(since int64, names map[string]bool) []*cdpdv1.HeartbeatSample {
	state := copyIdxMap(h.base)
	var out []*cdpdv1.HeartbeatSample
	for i := 0; i < h.n; i++ {
		s := h.at(i)
		if i > 0 {
			applyDelta(state, s.delta)
		}
		if s.t < since {
			continue
		}
		m := make(map[string]string, len(state))
		for k, v := range state {
			name := h.keys[k]
			if names == nil || names[name] {
				m[name] = v
			}
		}
		out = append(out, &cdpdv1.HeartbeatSample{
			Time: timestamppb.New(time.Unix(0, s.t)), Status: s.status, Metrics: m,
		})
	}
	return out
}

// Database encodings (names as strings, so they survive re-interning on load):
//   sample: status byte, then (uvarint len, key, uvarint len, value)* of the changed metrics
//   base:   (uvarint len, key, uvarint len, value)* of the full state

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (h *history) encodeSample(s *sample) []byte {
	b := make([]byte, 1, 1+2*len(s.delta))
	b[0] = byte(s.status)
	d := s.delta
	for len(d) > 0 {
		i, n := binary.Uvarint(d)
		d = d[n:]
		l, n := binary.Uvarint(d)
		d = d[n:]
		b = appendStr(b, h.keys[i])
		b = appendStr(b, string(d[:l]))
		d = d[l:]
	}
	return b
}

func (h *history) encodeBase() []byte {
	var b []byte
	for i, v := range h.base {
		b = appendStr(b, h.keys[i])
		b = appendStr(b, v)
	}
	return b
}

var errCorrupt = errors.New("corrupt history record")

func readStr(b []byte) (string, []byte, error) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return "", nil, errCorrupt
	}
	return string(b[n : n+int(l)]), b[n+int(l):], nil
}

// decodePairs interns the (key, value) pairs of b and calls fn for each.
func (h *history) decodePairs(b []byte, fn func(i uint32, v string)) error {
	for len(b) > 0 {
		k, rest, err := readStr(b)
		if err != nil {
			return err
		}
		v, rest, err := readStr(rest)
		if err != nil {
			return err
		}
		b = rest
		if i, ok := h.intern(k); ok {
			fn(i, v)
		}
	}
	return nil
}

func (h *history) loadBase(b []byte) error {
	h.base = make(map[uint32]string)
	return h.decodePairs(b, func(i uint32, v string) { h.setState(h.base, i, v) })
}

func (h *history) loadSample(t int64, b []byte, max int) error {
	if len(b) < 1 {
		return errCorrupt
	}
	var delta []byte
	err := h.decodePairs(b[1:], func(i uint32, v string) {
		delta = binary.AppendUvarint(delta, uint64(i))
		delta = binary.AppendUvarint(delta, uint64(len(v)))
		delta = append(delta, v...)
	})
	if err != nil {
		return err
	}
	if h.n == 0 && h.base == nil {
		h.base = make(map[uint32]string)
		h.applyBase(delta)
	}
	cost := sampleOverhead + int64(len(b))
	h.push(sample{t: t, status: flowctlv1.HealthStatus(b[0]), cost: int32(min(cost, 1<<31-1)), delta: delta}, max)
	return nil
}

// finishLoad rebuilds last (the newest state) after loading and drops the oldest samples
// beyond maxBytes.
func (h *history) finishLoad(maxBytes int64) {
	h.last = copyIdxMap(h.base)
	for i := 1; i < h.n; i++ {
		applyDelta(h.last, h.at(i).delta)
	}
	h.stateBytes += stateSize(h.last)
	h.unflushed = 0
	if h.size() > maxBytes {
		h.trimBytes(maxBytes)
		h.baseDirty = true
	}
}
