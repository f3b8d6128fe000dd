package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// Buckets of this package in the database:
//
//	services:      service id -> flowctl.v1.ComponentStatusResponse (protobuf)
//	history:       service id -> bucket of 8-byte big-endian unix ns -> sample (see history.go)
//	history_base:  service id -> full metric state at the service's oldest stored sample
//	owners:        service id -> its owner (owner.encode: never the token, only its hash)
var (
	bucketServices    = []byte("services")
	bucketHistory     = []byte("history")
	bucketHistoryBase = []byte("history_base")
	bucketOwners      = []byte("owners")
)

func (s *Server) openDB() error {
	// A locked file means another server owns it: fail fast rather than wait.
	db, err := bbolt.Open(s.opts.DBPath, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("opening control plane database %s: %w", s.opts.DBPath, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketServices, bucketHistory, bucketHistoryBase, bucketOwners} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = db.View(s.load)
	}
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("loading control plane database %s: %w", s.opts.DBPath, err)
	}
	s.db = db
	s.log.Info("control plane registry loaded", "services", len(s.entries), "histories", len(s.histories))
	return nil
}

func (s *Server) load(tx *bbolt.Tx) error {
	owners := tx.Bucket(bucketOwners)
	startNS := s.started.UnixNano()
	err := tx.Bucket(bucketServices).ForEach(func(k, v []byte) error {
		var rec flowctlv1.ComponentStatusResponse
		if err := proto.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("service %q: %w", k, err)
		}
		id := string(k)
		info := rec.GetComponent()
		if info == nil {
			info = &flowctlv1.ComponentInfo{}
		}
		info.Id = id
		e := &entry{
			id: id, info: info, status: rec.GetStatus(),
			registeredAt: rec.GetRegisteredAt().AsTime(), lastHB: rec.GetLastHeartbeat().AsTime(),
			metrics: rec.GetMetrics(),
		}
		if e.metrics == nil {
			e.metrics = make(map[string]string)
		}
		e.seen = make(map[string]int64, len(e.metrics))
		for k, v := range e.metrics {
			e.metricBytes += len(k) + len(v)
			e.seen[k] = startNS // as if sent at the start: kept while the service reconnects
		}
		if b := owners.Get(k); b != nil {
			o, err := decodeOwner(b)
			if err != nil {
				return fmt.Errorf("owner of service %q: %w", k, err)
			}
			e.owner = o
		} // else written before services had owners: unowned until its next heartbeat
		s.setEntryLocked(id, e)
		return nil
	})
	if err != nil {
		return err
	}
	bases := tx.Bucket(bucketHistoryBase)
	err = tx.Bucket(bucketHistory).ForEachBucket(func(k []byte) error {
		id := string(k)
		h := newHistory(id)
		if b := bases.Get(k); b != nil {
			if err := h.loadBase(b); err != nil {
				return fmt.Errorf("history base of %q: %w", id, err)
			}
		}
		err := tx.Bucket(bucketHistory).Bucket(k).ForEach(func(tk, v []byte) error {
			if len(tk) != 8 {
				return errCorrupt
			}
			return h.loadSample(int64(binary.BigEndian.Uint64(tk)), v, s.opts.HistoryMaxSamples)
		})
		if err != nil {
			return fmt.Errorf("history of %q: %w", id, err)
		}
		h.finishLoad()
		if h.baseDirty { // trimmed to a smaller HistoryMaxSamples: rewrite on the next flush
			s.dirty[id] = struct{}{}
		}
		if h.n > 0 {
			s.histories[id] = h
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, e := range s.entries {
		h := s.histories[id]
		if h == nil {
			h = newHistory(id)
			s.histories[id] = h
		}
		e.hist = h
	}
	return nil
}

// current reports whether e is the registered entry of its id. Database writes of a service
// record check it inside their transaction (bbolt runs one writer at a time), so a record can
// neither be resurrected by a write racing an unregistration nor overwrite a newer registration.
func (s *Server) current(e *entry) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entries[e.id] == e
}

// persistService writes e's record (write-through on registration). Concurrent registrations
// share transactions and fsyncs (bbolt's Batch).
func (s *Server) persistService(e *entry) error {
	return s.db.Batch(func(tx *bbolt.Tx) error {
		if !s.current(e) {
			return nil // replaced or unregistered meanwhile: its successor writes itself
		}
		// Encoded inside the transaction: a heartbeat that arrived since the registration (and
		// may already have been flushed) is never overwritten by the older state.
		e.mu.Lock()
		rec, err := proto.Marshal(e.statusLocked())
		own := e.owner
		e.mu.Unlock()
		if err != nil {
			return fmt.Errorf("encoding service record: %w", err)
		}
		if err := putOwner(tx, e.id, own); err != nil {
			return err
		}
		return tx.Bucket(bucketServices).Put([]byte(e.id), rec)
	})
}

// putOwner writes (or, for an unowned service, deletes) a service's owner record.
func putOwner(tx *bbolt.Tx, id string, o owner) error {
	if o.unowned() {
		return tx.Bucket(bucketOwners).Delete([]byte(id))
	}
	return tx.Bucket(bucketOwners).Put([]byte(id), o.encode())
}

// deleteService removes a service's record (its history stays until it ages out), unless the
// id was registered again meanwhile.
func (s *Server) deleteService(id string) error {
	return s.db.Batch(func(tx *bbolt.Tx) error {
		s.mu.RLock()
		back := s.entries[id] != nil
		s.mu.RUnlock()
		if back {
			return nil
		}
		if err := tx.Bucket(bucketOwners).Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(bucketServices).Delete([]byte(id))
	})
}

type histWrite struct {
	id      string
	drop    bool // no samples left: delete the service's history
	rewrite bool
	base    []byte // new base, nil = unchanged
	oldest  int64  // delete stored samples older than this
	samples []kv
}

type kv struct{ k, v []byte }

func timeKey(t int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t))
	return b[:]
}

// Flush writes every service changed since the last flush (status, last heartbeat, metrics,
// new history samples) in one transaction. Run calls it every FlushInterval, Close once more.
func (s *Server) Flush() error {
	if s.db == nil {
		return nil
	}
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	s.dirtyMu.Lock()
	ids := s.dirty
	s.dirty = make(map[string]struct{})
	s.dirtyMu.Unlock()
	if len(ids) == 0 {
		return nil
	}

	es := make(map[string]*entry, len(ids))
	hs := make(map[string]*history, len(ids))
	s.mu.RLock()
	for id := range ids {
		if e := s.entries[id]; e != nil {
			es[id] = e
		}
		hs[id] = s.histories[id] // nil: dropped
	}
	s.mu.RUnlock()

	type rec struct {
		e   *entry
		val []byte
		own owner
	}
	var recs []rec
	for id, e := range es {
		e.mu.Lock()
		st := e.statusLocked()
		own := e.owner
		e.mu.Unlock()
		b, err := proto.Marshal(st)
		if err != nil {
			return fmt.Errorf("encoding service record %s: %w", id, err)
		}
		recs = append(recs, rec{e, b, own})
	}
	var writes []histWrite
	for id, h := range hs {
		if h == nil {
			writes = append(writes, histWrite{id: id, drop: true})
			continue
		}
		h.mu.Lock()
		w := histWrite{id: id, rewrite: h.rewrite}
		switch {
		case h.n == 0:
			w.drop = true
		case h.rewrite || h.baseDirty || h.unflushed > 0:
			if h.rewrite || h.baseDirty {
				w.base = h.encodeBase()
			}
			w.oldest = h.at(0).t
			from := h.n - h.unflushed
			if h.rewrite {
				from = 0
			}
			for i := from; i < h.n; i++ {
				smp := h.at(i)
				w.samples = append(w.samples, kv{timeKey(smp.t), h.encodeSample(smp)})
			}
		}
		h.unflushed, h.baseDirty, h.rewrite = 0, false, false
		h.mu.Unlock()
		writes = append(writes, w)
	}

	err := s.db.Update(func(tx *bbolt.Tx) error {
		sb := tx.Bucket(bucketServices)
		for _, r := range recs {
			if !s.current(r.e) {
				continue // unregistered or replaced since collected
			}
			if err := sb.Put([]byte(r.e.id), r.val); err != nil {
				return err
			}
			if err := putOwner(tx, r.e.id, r.own); err != nil {
				return err
			}
		}
		hb, bb := tx.Bucket(bucketHistory), tx.Bucket(bucketHistoryBase)
		for _, w := range writes {
			if err := writeHistory(hb, bb, w); err != nil {
				return fmt.Errorf("history of %s: %w", w.id, err)
			}
		}
		return nil
	})
	if err != nil {
		s.persistErrors.Inc()
		// Everything collected goes again next time, histories rewritten in full.
		s.dirtyMu.Lock()
		for id := range ids {
			s.dirty[id] = struct{}{}
		}
		s.dirtyMu.Unlock()
		for _, h := range hs {
			if h != nil {
				h.mu.Lock()
				h.rewrite = true
				h.mu.Unlock()
			}
		}
		return fmt.Errorf("writing %d services to the control plane database: %w", len(ids), err)
	}
	return nil
}

func writeHistory(hb, bb *bbolt.Bucket, w histWrite) error {
	key := []byte(w.id)
	if w.drop || w.rewrite {
		if err := hb.DeleteBucket(key); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if err := bb.Delete(key); err != nil {
			return err
		}
		if w.drop {
			return nil
		}
	}
	if w.base == nil && len(w.samples) == 0 {
		return nil
	}
	b, err := hb.CreateBucketIfNotExists(key)
	if err != nil {
		return err
	}
	if w.base != nil {
		if err := bb.Put(key, w.base); err != nil {
			return err
		}
		// Samples older than the new base are gone from memory: delete them here too.
		oldest := timeKey(w.oldest)
		c := b.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, oldest) < 0; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
	}
	for _, s := range w.samples {
		if err := b.Put(s.k, s.v); err != nil {
			return err
		}
	}
	return nil
}
