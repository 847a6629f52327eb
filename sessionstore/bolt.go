package sessionstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var boltBucket = []byte("sessions")

// Bolt keeps sessions in a bbolt file, so they survive restarts. Each value
// is the record's expiry (8 bytes, big-endian Unix nanoseconds) followed by
// the encoded record; the sweeper reads only the first 8 bytes.
//
// The index by user (UserIndex) is a second bucket, changed in the same
// transactions as the records (see index_bolt.go).
//
// bbolt holds an exclusive lock on its file: open one Bolt per file per
// process and share it (the Caddy module does so through a UsagePool).
type Bolt struct {
	db   *bolt.DB
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// BoltOptions tune OpenBolt.
type BoltOptions struct {
	// LockTimeout is how long to wait for another process's lock on the
	// file before giving up. Default 5s.
	LockTimeout time.Duration
	// Sweep is how often expired records are deleted. Default 1m.
	Sweep time.Duration
}

// OpenBolt opens (creating if needed, with its directory) the bbolt file at
// path and starts sweeping expired records.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Second
	}
	if opts.Sweep <= 0 {
		opts.Sweep = time.Minute
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return nil, fmt.Errorf("bolt store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(boltBucket); err != nil {
			return err
		}
		return boltOpenIndex(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt store %s: %w", path, err)
	}
	b := &Bolt{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go b.sweepEvery(opts.Sweep)
	return b, nil
}

// Find implements Store.
func (b *Bolt) Find(ctx context.Context, key Key) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	var rec Record
	found := false
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(boltBucket).Get(key[:])
		if len(v) < 8 || boltExpired(v, time.Now()) {
			return nil
		}
		// v is only valid inside the transaction; UnmarshalBinary copies
		// every string out of it.
		found = rec.UnmarshalBinary(v[8:]) == nil
		return nil
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("bolt store: %w", err)
	}
	if !found {
		return Record{}, false, nil
	}
	return rec, true, nil
}

// Create implements Store.
func (b *Bolt) Create(ctx context.Context, key Key, rec Record) error {
	v, err := boltValue(ctx, rec)
	if err != nil {
		return err
	}
	err = b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltBucket)
		if err := boltUnindex(tx, key[:], bk.Get(key[:])); err != nil {
			return err
		}
		if err := bk.Put(key[:], v); err != nil {
			return err
		}
		return boltIndex(tx, key[:], rec.User)
	})
	if err != nil {
		return fmt.Errorf("bolt store: %w", err)
	}
	return nil
}

// Update implements Store inside one write transaction (a read-only one
// for an empty Change).
func (b *Bolt) Update(ctx context.Context, key Key, ch Change) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	var rec Record
	found := false
	// load reads the stored record into rec; v is only valid inside the
	// transaction, and UnmarshalBinary copies every string out of it.
	load := func(tx *bolt.Tx) {
		v := tx.Bucket(boltBucket).Get(key[:])
		found = len(v) >= 8 && !boltExpired(v, time.Now()) && rec.UnmarshalBinary(v[8:]) == nil
	}
	var err error
	if ch.IsZero() {
		err = b.db.View(func(tx *bolt.Tx) error {
			load(tx)
			return nil
		})
	} else {
		err = b.db.Update(func(tx *bolt.Tx) error {
			if load(tx); !found {
				return nil
			}
			rec = rec.Apply(ch)
			v, err := boltValue(ctx, rec)
			if err != nil {
				return err
			}
			return tx.Bucket(boltBucket).Put(key[:], v)
		})
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("bolt store: %w", err)
	}
	if !found {
		return Record{}, false, nil
	}
	return rec, true, nil
}

// CreateMany stores rec under every key, in transactions of up to 10,000
// keys: for importing and for tests at scale.
func (b *Bolt) CreateMany(ctx context.Context, keys []Key, rec Record) error {
	v, err := boltValue(ctx, rec)
	if err != nil {
		return err
	}
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 10_000)]
		keys = keys[len(chunk):]
		err := b.db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(boltBucket)
			for _, k := range chunk {
				if err := boltUnindex(tx, k[:], bk.Get(k[:])); err != nil {
					return err
				}
				if err := bk.Put(k[:], v); err != nil {
					return err
				}
				if err := boltIndex(tx, k[:], rec.User); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bolt store: %w", err)
		}
	}
	return nil
}

// Delete implements Store.
func (b *Bolt) Delete(ctx context.Context, key Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltBucket)
		if err := boltUnindex(tx, key[:], bk.Get(key[:])); err != nil {
			return err
		}
		return bk.Delete(key[:])
	})
	if err != nil {
		return fmt.Errorf("bolt store: %w", err)
	}
	return nil
}

// Each implements Lister. It runs in one read transaction.
func (b *Bolt) Each(ctx context.Context, fn func(Key, Record) bool) error {
	now := time.Now()
	errStop := errors.New("stop")
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var rec Record
			if len(k) != len(Key{}) || len(v) < 8 || boltExpired(v, now) || rec.UnmarshalBinary(v[8:]) != nil {
				return nil
			}
			if !fn(Key(k), rec) {
				return errStop
			}
			return nil
		})
	})
	if err != nil && err != errStop {
		return fmt.Errorf("bolt store: %w", err)
	}
	return nil
}

// Len returns how many records the file holds, expired ones not yet swept
// included.
func (b *Bolt) Len() int {
	n := 0
	b.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(boltBucket).Stats().KeyN
		return nil
	})
	return n
}

// Path returns the file's path.
func (b *Bolt) Path() string { return b.db.Path() }

// Close stops the sweeper and closes the file.
func (b *Bolt) Close() error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	return b.db.Close()
}

// Sweep deletes every expired record now and returns how many it deleted;
// claims whose time has passed go too (they are not counted).
func (b *Bolt) Sweep(now time.Time) (int, error) {
	if err := b.sweepClaims(now); err != nil {
		return 0, fmt.Errorf("bolt store: %w", err)
	}
	// Collect first, then delete in a short write transaction, so readers
	// are never held up by a long scan.
	var expired [][]byte
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).ForEach(func(k, v []byte) error {
			if len(v) < 8 || boltExpired(v, now) {
				expired = append(expired, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(expired) == 0 {
		return 0, err
	}
	n := 0
	err = b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltBucket)
		for _, k := range expired {
			// Check again: the key may have been updated since the scan.
			if v := bk.Get(k); v != nil && (len(v) < 8 || boltExpired(v, now)) {
				if err := boltUnindex(tx, k, v); err != nil {
					return err
				}
				if err := bk.Delete(k); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

func (b *Bolt) sweepEvery(d time.Duration) {
	defer close(b.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.Sweep(now)
		}
	}
}

func boltValue(ctx context.Context, rec Record) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+rec.encodedSizeHint()), uint64(rec.Expires.UnixNano()))
	return rec.AppendBinary(v)
}

func boltExpired(v []byte, now time.Time) bool {
	return int64(binary.BigEndian.Uint64(v[:8])) <= now.UnixNano()
}

var (
	_ Store     = (*Bolt)(nil)
	_ Lister    = (*Bolt)(nil)
	_ UserIndex = (*Bolt)(nil)
)
