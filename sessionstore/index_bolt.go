package sessionstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltUsers is the bucket of the index by user. Each key is the user's name
// (length-prefixed, so that no name is a prefix of another's entries)
// followed by a session's Key; values are empty. It is changed in the same
// transaction as the session it names, and swept with it.
var boltUsers = []byte("users")

// boltUserPrefix returns the part of an index key that names user.
func boltUserPrefix(user string) []byte {
	p := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(user)+len(Key{})), uint64(len(user)))
	return append(p, user...)
}

// boltIndex adds key to user's index (nothing for user "").
func boltIndex(tx *bolt.Tx, key []byte, user string) error {
	if user == "" {
		return nil
	}
	return tx.Bucket(boltUsers).Put(append(boltUserPrefix(user), key...), []byte{})
}

// boltUnindex removes key, whose stored value is v (nil if none), from its
// user's index.
func boltUnindex(tx *bolt.Tx, key, v []byte) error {
	if len(v) < 8 {
		return nil
	}
	user, ok := recordUser(v[8:])
	if !ok || user == "" {
		return nil
	}
	return tx.Bucket(boltUsers).Delete(append(boltUserPrefix(user), key...))
}

// boltOpenIndex creates the index when a file has none (a new file, or one
// written before the index existed), from the sessions it holds.
func boltOpenIndex(tx *bolt.Tx) error {
	if tx.Bucket(boltUsers) != nil {
		return nil
	}
	if _, err := tx.CreateBucket(boltUsers); err != nil {
		return err
	}
	return tx.Bucket(boltBucket).ForEach(func(k, v []byte) error {
		if len(k) != len(Key{}) || len(v) < 8 {
			return nil
		}
		user, ok := recordUser(v[8:])
		if !ok {
			return nil
		}
		return boltIndex(tx, k, user)
	})
}

// userKeys returns the keys in user's index.
func boltUserKeys(tx *bolt.Tx, user string) []Key {
	prefix := boltUserPrefix(user)
	var keys []Key
	c := tx.Bucket(boltUsers).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+len(Key{}) {
			keys = append(keys, Key(k[len(prefix):]))
		}
	}
	return keys
}

// ListUser implements UserIndex in one read transaction.
func (b *Bolt) ListUser(ctx context.Context, user string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if user == "" {
		return nil, nil
	}
	now := time.Now()
	var es []Entry
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltBucket)
		for _, k := range boltUserKeys(tx, user) {
			v := bk.Get(k[:])
			var rec Record
			if len(v) < 8 || boltExpired(v, now) || rec.UnmarshalBinary(v[8:]) != nil || rec.User != user {
				continue
			}
			es = append(es, Entry{Handle: k.Handle(), Record: rec})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt store: %w", err)
	}
	sortEntries(es)
	return es, nil
}

// DeleteUser implements UserIndex in one write transaction.
func (b *Bolt) DeleteUser(ctx context.Context, user string, handles ...Handle) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if user == "" {
		return nil, nil
	}
	want := wanted(handles)
	now := time.Now()
	var deleted []Key
	err := b.db.Update(func(tx *bolt.Tx) error {
		deleted = deleted[:0]
		bk, idx := tx.Bucket(boltBucket), tx.Bucket(boltUsers)
		prefix := boltUserPrefix(user)
		for _, k := range boltUserKeys(tx, user) {
			if !want(k) {
				continue
			}
			if err := idx.Delete(append(prefix, k[:]...)); err != nil {
				return err
			}
			v := bk.Get(k[:])
			if len(v) < 8 {
				continue
			}
			if u, ok := recordUser(v[8:]); ok && u != user {
				continue // not this user's: the index entry was stale
			}
			if !boltExpired(v, now) {
				deleted = append(deleted, k)
			}
			if err := bk.Delete(k[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt store: %w", err)
	}
	return deleted, nil
}

// DeleteAll implements UserIndex in one write transaction: both buckets
// are dropped and made anew.
func (b *Bolt) DeleteAll(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := time.Now()
	n := 0
	err := b.db.Update(func(tx *bolt.Tx) error {
		n = 0
		err := tx.Bucket(boltBucket).ForEach(func(_, v []byte) error {
			if len(v) >= 8 && !boltExpired(v, now) {
				n++
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range [][]byte{boltBucket, boltUsers} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt store: %w", err)
	}
	return n, nil
}
