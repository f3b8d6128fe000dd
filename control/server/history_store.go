package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/withobsrvr/cdpd/internal/atomicfile"
)

// HistoryDBPath is the history database of the database dbPath: "flowctl.db" ->
// "flowctl-history.db" (a name without ".db" gets "-history.db" appended). The history has a
// file of its own so that it can be compacted while the server runs: bbolt files never
// shrink, and the alert rules hold the main database open.
func HistoryDBPath(dbPath string) string {
	return strings.TrimSuffix(dbPath, ".db") + "-history.db"
}

// openHistory opens the history database, loads the histories (moving them out of the main
// database db if it still holds them, written before the history had a file of its own) and
// compacts either file when it holds much more free space than data. s.db is set.
func (s *Server) openHistory(db *bbolt.DB) error {
	s.db = db
	s.hdbPath = HistoryDBPath(s.opts.DBPath)
	hdb, err := s.openBolt(s.hdbPath, bucketHistory, bucketHistoryBase)
	if err != nil {
		return err
	}
	s.hdb = hdb
	s.tuneHistoryDB()
	legacy := false
	_ = db.View(func(tx *bbolt.Tx) error {
		legacy = tx.Bucket(bucketHistory) != nil || tx.Bucket(bucketHistoryBase) != nil
		return nil
	})
	if !legacy {
		if err := hdb.View(s.loadHistories); err != nil {
			return s.closeHistory(err)
		}
	} else {
		// Histories in the main database: copy them unless an interrupted migration already
		// did, then delete them there.
		moved := false
		_ = hdb.View(func(tx *bbolt.Tx) error {
			k, _ := tx.Bucket(bucketHistory).Cursor().First()
			moved = k != nil
			return nil
		})
		src := db
		if moved {
			src = hdb
		}
		if err := src.View(s.loadHistories); err != nil {
			return s.closeHistory(err)
		}
		if !moved {
			for id, h := range s.histories {
				h.rewrite = true
				s.dirty[id] = struct{}{}
			}
			if err := s.flushHistories(s.histories); err != nil {
				return s.closeHistory(fmt.Errorf("moving the history to %s: %w", s.hdbPath, err))
			}
		}
		err := db.Update(func(tx *bbolt.Tx) error {
			for _, b := range [][]byte{bucketHistory, bucketHistoryBase} {
				if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return s.closeHistory(fmt.Errorf("deleting the history moved to %s: %w", s.hdbPath, err))
		}
		s.log.Info("heartbeat history moved to its own file", "from", s.opts.DBPath, "to", s.hdbPath,
			"histories", len(s.histories))
	}
	for _, f := range []struct {
		db   **bbolt.DB
		path string
	}{{&s.db, s.opts.DBPath}, {&s.hdb, s.hdbPath}} {
		if !wasteful(*f.db, f.path) {
			continue
		}
		ndb, err := s.compact(*f.db, f.path, s.historyAllocSize())
		*f.db = ndb
		if err != nil {
			return s.closeHistory(err)
		}
	}
	s.tuneHistoryDB()
	return nil
}

// closeHistory closes the history database after a failed open and returns err.
func (s *Server) closeHistory(err error) error {
	if s.hdb != nil {
		_ = s.hdb.Close()
		s.hdb = nil
	}
	return err
}

// tuneHistoryDB makes the history file grow in steps of historyAllocSize.
func (s *Server) tuneHistoryDB() {
	if s.hdb != nil {
		s.hdb.AllocSize = s.historyAllocSize()
	}
}

// historyAllocSize is a 32nd of the total budget, between 64 KiB and bbolt's default 16 MiB:
// bbolt grows a file by its AllocSize (or to the next power of two below it), more than a
// small budget.
func (s *Server) historyAllocSize() int {
	return int(min(max(s.opts.HistoryTotalBytes/32, 64<<10), 16<<20))
}

// wasteful reports whether a bbolt file is at least 1 MiB and more than twice the size of the
// data it holds (pages in use), so that compacting it is worth a rewrite.
func wasteful(db *bbolt.DB, path string) bool {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < 1<<20 {
		return false
	}
	var used int64
	_ = db.View(func(tx *bbolt.Tx) error {
		st := db.Stats()
		used = tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(db.Info().PageSize)
		return nil
	})
	return fi.Size() > 2*used
}

// compact rewrites the bbolt file path of db with only its data (bbolt.Compact into a
// temporary file that replaces it atomically, internal/atomicfile) and returns the reopened
// database; on failure the original file is reopened. db is closed; nothing else may use it.
func (s *Server) compact(db *bbolt.DB, path string, allocSize int) (*bbolt.DB, error) {
	before, _ := os.Stat(path)
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("closing %s to compact it: %w", path, err)
	}
	start := time.Now()
	err := compactFile(path, allocSize)
	ndb, oerr := bbolt.Open(path, 0o600, s.boltOptions())
	if oerr != nil {
		return nil, errors.Join(err, fmt.Errorf("reopening control plane database %s: %w", path, oerr))
	}
	if err != nil {
		s.persistErrors.Inc()
		s.log.Error("compacting a control plane database failed; it keeps its size", "path", path, "err", err)
		return ndb, nil
	}
	s.compactions.Inc()
	after, _ := os.Stat(path)
	if before != nil && after != nil {
		s.log.Info("control plane database compacted", "path", filepath.Base(path),
			"bytes_before", before.Size(), "bytes_after", after.Size(), "took", time.Since(start).Round(time.Millisecond))
	}
	return ndb, nil
}

// compactFile writes the data of the bbolt file path into a new file grown in steps of
// allocSize and replaces path with it.
func compactFile(path string, allocSize int) error {
	src, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("opening %s to compact it: %w", path, err)
	}
	defer src.Close()
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer tmp.Discard()
	dst, err := bbolt.Open(tmp.Name(), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("creating the compacted copy of %s: %w", path, err)
	}
	dst.AllocSize = allocSize
	if err := bbolt.Compact(dst, src, 4<<20); err != nil {
		_ = dst.Close()
		return fmt.Errorf("compacting %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("closing the compacted copy of %s: %w", path, err)
	}
	return tmp.Commit()
}

// compactHistoryIfOver compacts the history file when it has grown beyond HistoryTotalBytes:
// the histories in it are within that budget, the rest is free space bbolt never gives
// back. persistMu held (or the server not shared yet).
func (s *Server) compactHistoryIfOver() error {
	fi, err := os.Stat(s.hdbPath)
	if err != nil || fi.Size() <= s.opts.HistoryTotalBytes {
		return nil
	}
	s.hdb, err = s.compact(s.hdb, s.hdbPath, s.historyAllocSize())
	if err != nil {
		return err
	}
	s.tuneHistoryDB()
	return nil
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

// flushHistories writes the changes of hs (nil: dropped) to the history database, in one
// transaction.
func (s *Server) flushHistories(hs map[string]*history) error {
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
	if len(writes) == 0 {
		return nil
	}
	return s.hdb.Update(func(tx *bbolt.Tx) error {
		hb, bb := tx.Bucket(bucketHistory), tx.Bucket(bucketHistoryBase)
		for _, w := range writes {
			if err := writeHistory(hb, bb, w); err != nil {
				return fmt.Errorf("history of %s: %w", w.id, err)
			}
		}
		return nil
	})
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
	// Samples are appended in time order: full pages (bbolt splits at FillPercent).
	b.FillPercent = 0.95
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
