package alert

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
)

// The manager's buckets in the control plane's database.
var (
	bucketAlerts = []byte("cdpd.alerts")       // id -> cdpdv1.Alert (protobuf)
	bucketFiring = []byte("cdpd.alert_firing") // "<alert id>\x00<service id>" -> pairState (JSON)
)

// store writes rules and firing states through to bbolt; with a nil db it keeps nothing
// (the manager's maps are the only copy) and numbers new ids with a counter.
type store struct {
	db  *bbolt.DB
	seq uint64
}

func openStore(db *bbolt.DB) (*store, error) {
	s := &store{db: db}
	if db == nil {
		return s, nil
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketAlerts, bucketFiring} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("creating alert buckets: %w", err)
	}
	return s, nil
}

func (s *store) loadAlerts() ([]*cdpdv1.Alert, error) {
	if s.db == nil {
		return nil, nil
	}
	var out []*cdpdv1.Alert
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAlerts).ForEach(func(k, v []byte) error {
			a := &cdpdv1.Alert{}
			if err := proto.Unmarshal(v, a); err != nil {
				return fmt.Errorf("alert %q: %w", k, err)
			}
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("loading alerts: %w", err)
	}
	return out, nil
}

func (s *store) loadPairs() (map[pairKey]*pairState, error) {
	out := map[pairKey]*pairState{}
	if s.db == nil {
		return out, nil
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketFiring).ForEach(func(k, v []byte) error {
			alertID, serviceID, ok := strings.Cut(string(k), "\x00")
			if !ok {
				return nil
			}
			p := &pairState{}
			if err := json.Unmarshal(v, p); err != nil {
				return fmt.Errorf("state of alert %q for %q: %w", alertID, serviceID, err)
			}
			out[pairKey{alertID, serviceID}] = p
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("loading alert states: %w", err)
	}
	return out, nil
}

func (s *store) putAlert(a *cdpdv1.Alert) error {
	if s.db == nil {
		return nil
	}
	v, err := proto.Marshal(a)
	if err != nil {
		return fmt.Errorf("encoding alert %q: %w", a.GetId(), err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketAlerts).Put([]byte(a.GetId()), v) }); err != nil {
		return fmt.Errorf("storing alert %q: %w", a.GetId(), err)
	}
	return nil
}

// deleteAlert removes a rule and every state of it.
func (s *store) deleteAlert(id string) error {
	if s.db == nil {
		return nil
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketAlerts).Delete([]byte(id)); err != nil {
			return err
		}
		c := tx.Bucket(bucketFiring).Cursor()
		prefix := []byte(id + "\x00")
		for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting alert %q: %w", id, err)
	}
	return nil
}

func pairBytes(k pairKey) []byte { return []byte(k.alert + "\x00" + k.service) }

func (s *store) putPair(k pairKey, p *pairState) error {
	if s.db == nil {
		return nil
	}
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketFiring).Put(pairBytes(k), v) })
}

func (s *store) deletePair(k pairKey) error {
	if s.db == nil {
		return nil
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketFiring).Delete(pairBytes(k)) })
}

// nextID returns a new id "alert-<n>" (n persisted in the bucket's sequence).
func (s *store) nextID() (string, error) {
	if s.db == nil {
		s.seq++
		return "alert-" + strconv.FormatUint(s.seq, 10), nil
	}
	var n uint64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.Bucket(bucketAlerts).NextSequence()
		return err
	})
	if err != nil {
		return "", fmt.Errorf("numbering alert: %w", err)
	}
	return "alert-" + strconv.FormatUint(n, 10), nil
}
