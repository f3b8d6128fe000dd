package server

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// Buckets of this package. In the database (Options.DBPath), shared with the alert rules:
//
//	services:      service id -> flowctl.v1.ComponentStatusResponse (protobuf)
//	owners:        service id -> its owner (owner.encode: never the token, only its hash)
//
// In the history database (HistoryDBPath), this package's alone:
//
//	history:       service id -> bucket of 8-byte big-endian unix ns -> sample (see history.go)
//	history_base:  service id -> full metric state at the service's oldest stored sample
//
// Before the history had a file of its own it lived in the database: such a database is
// migrated when it is opened (histories moved, the file compacted).
var (
	bucketServices    = []byte("services")
	bucketHistory     = []byte("history")
	bucketHistoryBase = []byte("history_base")
	bucketOwners      = []byte("owners")
)

// boltOptions are the options of every bbolt file the server opens.
func (s *Server) boltOptions() *bbolt.Options {
	return &bbolt.Options{Timeout: time.Second, NoSync: s.opts.noSync}
}

func (s *Server) openDB() error {
	db, err := s.openBolt(s.opts.DBPath, bucketServices, bucketOwners)
	if err != nil {
		return err
	}
	err = db.View(s.loadServices)
	if err == nil {
		err = s.openHistory(db)
	}
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("loading control plane database %s: %w", s.opts.DBPath, err)
	}
	for id, e := range s.entries {
		h := s.histories[id]
		if h == nil {
			h = newHistory(id)
			s.histories[id] = h
		}
		e.hist = h
	}
	var total int64
	for _, h := range s.histories {
		total += h.size()
	}
	s.histBytes.Store(total)
	s.enforceTotal()
	s.log.Info("control plane registry loaded", "services", len(s.entries), "histories", len(s.histories),
		"history_bytes", total, "history_db", s.hdbPath)
	return nil
}

// openBolt opens (creates) a bbolt file with the given buckets. A locked file means another
// server owns it: fail fast rather than wait.
func (s *Server) openBolt(path string, buckets ...[]byte) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, s.boltOptions())
	if err != nil {
		return nil, fmt.Errorf("opening control plane database %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("preparing control plane database %s: %w", path, err)
	}
	return db, nil
}

func (s *Server) loadServices(tx *bbolt.Tx) error {
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
	return err
}

// loadHistories loads the histories of a database holding the history buckets.
func (s *Server) loadHistories(tx *bbolt.Tx) error {
	bases := tx.Bucket(bucketHistoryBase)
	return tx.Bucket(bucketHistory).ForEachBucket(func(k []byte) error {
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
		h.finishLoad(s.opts.HistoryMaxBytes)
		if h.baseDirty { // trimmed to a smaller budget: rewrite on the next flush
			s.dirty[id] = struct{}{}
		}
		if h.n > 0 {
			s.histories[id] = h
		}
		return nil
	})
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

// Flush writes every service changed since the last flush: status, last heartbeat, metrics
// and owner to the database, new history samples to the history database (compacted when its
// file has grown beyond HistoryTotalBytes). Run calls it every FlushInterval, Close once more.
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

	err := s.flushServices(es)
	if err == nil {
		err = s.flushHistories(hs)
	}
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
	return s.compactHistoryIfOver()
}

// flushServices writes the records and owners of es (those still registered).
func (s *Server) flushServices(es map[string]*entry) error {
	if len(es) == 0 {
		return nil
	}
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
	return s.db.Update(func(tx *bbolt.Tx) error {
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
		return nil
	})
}
