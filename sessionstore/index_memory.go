package sessionstore

import (
	"context"
	"time"
)

// memoryUser is one user's index in a Memory store: the keys of their
// records, expired ones not yet swept included. Entries point to it, so the
// user's name is held once, not once per session.
type memoryUser struct {
	name string
	keys map[Key]struct{}
}

// index adds key to user's index and returns it (nil for user ""). The
// caller holds m.mu for writing.
func (m *Memory) index(key Key, user string) *memoryUser {
	if user == "" {
		return nil
	}
	u := m.users[user]
	if u == nil {
		u = &memoryUser{name: user, keys: make(map[Key]struct{}, 1)}
		m.users[user] = u
	}
	u.keys[key] = struct{}{}
	return u
}

// unindex removes key, stored as e, from its user's index. The caller
// holds m.mu for writing.
func (m *Memory) unindex(key Key, e memoryEntry) {
	if e.user == nil {
		return
	}
	delete(e.user.keys, key)
	if len(e.user.keys) == 0 {
		delete(m.users, e.user.name)
	}
}

// ListUser implements UserIndex.
func (m *Memory) ListUser(ctx context.Context, user string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	m.mu.RLock()
	defer m.mu.RUnlock()
	u := m.users[user]
	if u == nil {
		return nil, nil
	}
	var es []Entry
	for k := range u.keys {
		e := m.entries[k]
		var rec Record
		if e.expires <= now || rec.UnmarshalBinary([]byte(e.rec)) != nil {
			continue
		}
		es = append(es, Entry{Handle: k.Handle(), Record: rec})
	}
	sortEntries(es)
	return es, nil
}

// DeleteUser implements UserIndex, under the store's lock.
func (m *Memory) DeleteUser(ctx context.Context, user string, handles ...Handle) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	want := wanted(handles)
	now := time.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[user]
	if u == nil {
		return nil, nil
	}
	var deleted []Key
	for k := range u.keys {
		if !want(k) {
			continue
		}
		e := m.entries[k]
		if e.expires > now {
			deleted = append(deleted, k)
		}
		m.unindex(k, e)
		delete(m.entries, k)
	}
	return deleted, nil
}

// DeleteAll implements UserIndex.
func (m *Memory) DeleteAll(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := time.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, e := range m.entries {
		if e.expires > now {
			n++
		}
	}
	m.entries = make(map[Key]memoryEntry)
	m.users = make(map[string]*memoryUser)
	return n, nil
}
