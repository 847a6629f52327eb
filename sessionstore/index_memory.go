package sessionstore

import (
	"context"
	"maps"
	"slices"
	"time"
)

// memoryUser is one user's index in a Memory store: the keys of their
// records, expired ones not yet swept included. Entries point to it, so the
// user's name is held once, not once per session. Most users have a few
// sessions: their keys are a short slice (a map costs some 300 bytes even
// for one key), and only a user with many gets a map.
type memoryUser struct {
	name string
	few  []Key            // while there are at most memoryFewKeys
	many map[Key]struct{} // from then on
}

const memoryFewKeys = 16

func (u *memoryUser) add(k Key) {
	switch {
	case u.many != nil:
		u.many[k] = struct{}{}
	case slices.Contains(u.few, k):
	case len(u.few) < memoryFewKeys:
		u.few = append(u.few, k)
	default:
		u.many = make(map[Key]struct{}, 2*memoryFewKeys)
		for _, f := range u.few {
			u.many[f] = struct{}{}
		}
		u.many[k] = struct{}{}
		u.few = nil
	}
}

func (u *memoryUser) remove(k Key) {
	if u.many != nil {
		delete(u.many, k)
		return
	}
	if i := slices.Index(u.few, k); i >= 0 {
		u.few[i] = u.few[len(u.few)-1]
		u.few = u.few[:len(u.few)-1]
	}
}

func (u *memoryUser) len() int { return len(u.few) + len(u.many) }

// keys returns a copy of the user's keys, so that the caller may change
// the index while it goes through them.
func (u *memoryUser) keys() []Key {
	if u.many == nil {
		return slices.Clone(u.few)
	}
	return slices.Collect(maps.Keys(u.many))
}

// index adds key to user's index and returns it (nil for user ""). The
// caller holds m.mu for writing.
func (m *Memory) index(key Key, user string) *memoryUser {
	if user == "" {
		return nil
	}
	u := m.users[user]
	if u == nil {
		u = &memoryUser{name: user, few: make([]Key, 0, 1)}
		m.users[user] = u
	}
	u.add(key)
	return u
}

// unindex removes key, stored as e, from its user's index. The caller
// holds m.mu for writing.
func (m *Memory) unindex(key Key, e memoryEntry) {
	if e.user == nil {
		return
	}
	e.user.remove(key)
	if e.user.len() == 0 {
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
	for _, k := range u.keys() {
		e := m.entries[k]
		var rec Record
		if e.expires <= now || rec.unmarshal(e.rec) != nil {
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
	for _, k := range u.keys() {
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
