package server

import (
	"encoding/binary"
	"errors"
	"sync"
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
	delta  []byte // (uvarint key index, uvarint len, value bytes)*
}

func newHistory(id string) *history {
	return &history{id: id, keyIdx: make(map[string]uint32), last: make(map[uint32]string)}
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
	return i, true
}

// add appends a sample for a heartbeat at t carrying metrics.
func (h *history) add(t int64, st flowctlv1.HealthStatus, metrics map[string]string, max int) {
	if h.n > 0 {
		if prev := h.at(h.n - 1).t; t <= prev {
			t = prev + 1
		}
	}
	var delta []byte
	for k, v := range metrics {
		i, ok := h.intern(k)
		if !ok {
			continue
		}
		if old, ok := h.last[i]; ok && old == v {
			continue
		}
		h.last[i] = v
		delta = binary.AppendUvarint(delta, uint64(i))
		delta = binary.AppendUvarint(delta, uint64(len(v)))
		delta = append(delta, v...)
	}
	h.push(sample{t: t, status: st, delta: delta}, max)
	if h.n == 1 { // the oldest sample: its state is the base
		h.base = copyIdxMap(h.last)
		h.baseDirty = true
	}
	h.unflushed = min(h.unflushed+1, h.n)
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
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// evict drops the oldest sample, folding the next one's changes into base.
func (h *history) evict() {
	h.ring[h.head] = sample{}
	h.head = (h.head + 1) % len(h.ring)
	h.n--
	if h.n > 0 {
		if h.base == nil {
			h.base = make(map[uint32]string)
		}
		applyDelta(h.base, h.at(0).delta)
	} else {
		h.base = nil
	}
	h.baseDirty = true
	h.unflushed = min(h.unflushed, h.n)
}

// pruneBefore drops samples older than cutoff (unix ns); it reports whether any was dropped.
func (h *history) pruneBefore(cutoff int64) bool {
	dropped := false
	for h.n > 0 && h.at(0).t < cutoff {
		h.evict()
		dropped = true
	}
	if h.n == 0 {
		h.ring, h.head = nil, 0 // free the memory of a silent service
	}
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
	return h.decodePairs(b, func(i uint32, v string) { h.base[i] = v })
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
		applyDelta(h.base, delta)
	}
	h.push(sample{t: t, status: flowctlv1.HealthStatus(b[0]), delta: delta}, max)
	return nil
}

// finishLoad rebuilds last (the newest state) after loading.
func (h *history) finishLoad() {
	h.last = copyIdxMap(h.base)
	for i := 1; i < h.n; i++ {
		applyDelta(h.last, h.at(i).delta)
	}
	h.unflushed = 0
}
