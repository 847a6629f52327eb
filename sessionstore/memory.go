package sessionstore

import (
	"context"
	"sync"
	"time"
)

// Memory keeps sessions in this process's memory. Records are held encoded
// (MarshalBinary), which keeps a small session to about 200 bytes and
// means no caller can change a stored record through a shared map; a
// record found shares its strings with the held one (strings cannot be
// changed), so a Find allocates only the record's map and slice.
//
// Expired records are never returned and are swept every sweep interval.
// Call Close to stop the sweeper.
//
// The index by user (UserIndex) is a set of keys per user, changed under
// the same lock as the records.
type Memory struct {
	mu      sync.RWMutex
	entries map[Key]memoryEntry
	users   map[string]*memoryUser
	claims  map[Key]int64 // Claimer: until, in Unix nanoseconds
	vault   map[string]string
	stop    chan struct{}
	once    sync.Once
}

type memoryEntry struct {
	rec     string      // the encoded Record
	expires int64       // Unix nanoseconds, copied out of rec for the sweeper
	user    *memoryUser // the record's user's index; nil for User ""
}

// NewMemory returns an empty memory store that sweeps expired records every
// sweep (one minute if sweep <= 0).
func NewMemory(sweep time.Duration) *Memory {
	if sweep <= 0 {
		sweep = time.Minute
	}
	m := &Memory{entries: make(map[Key]memoryEntry), users: make(map[string]*memoryUser), claims: make(map[Key]int64), vault: make(map[string]string), stop: make(chan struct{})}
	go m.sweepEvery(sweep)
	return m
}

// Find implements Store.
func (m *Memory) Find(ctx context.Context, key Key) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	m.mu.RLock()
	e, ok := m.entries[key]
	m.mu.RUnlock()
	if !ok || e.expires <= time.Now().UnixNano() {
		return Record{}, false, nil
	}
	var rec Record
	if err := rec.unmarshal(e.rec); err != nil {
		return Record{}, false, nil
	}
	return rec, true, nil
}

// Create implements Store.
func (m *Memory) Create(ctx context.Context, key Key, rec Record) error {
	e, err := m.entry(ctx, rec)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.entries[key]; ok {
		m.unindex(key, old)
	}
	e.user = m.index(key, rec.User)
	m.entries[key] = e
	return nil
}

// Update implements Store, under the store's lock.
func (m *Memory) Update(ctx context.Context, key Key, ch Change) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.entries[key]
	var rec Record
	if !ok || old.expires <= time.Now().UnixNano() || rec.unmarshal(old.rec) != nil {
		return Record{}, false, nil
	}
	if ch.IsZero() {
		return rec, true, nil
	}
	rec = rec.Apply(ch)
	e, err := m.entry(ctx, rec)
	if err != nil {
		return Record{}, false, err
	}
	e.user = old.user // Update never changes User
	m.entries[key] = e
	return rec, true, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.entries[key]; ok {
		m.unindex(key, old)
		delete(m.entries, key)
	}
	return nil
}

// Each implements Lister.
func (m *Memory) Each(ctx context.Context, fn func(Key, Record) bool) error {
	now := time.Now().UnixNano()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for k, e := range m.entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		var rec Record
		if e.expires <= now || rec.unmarshal(e.rec) != nil {
			continue
		}
		if !fn(k, rec) {
			return nil
		}
	}
	return nil
}

// Len returns how many records are held, expired ones not yet swept
// included.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries)
}

// Close stops the sweeper. The store stays usable.
func (m *Memory) Close() error {
	m.once.Do(func() { close(m.stop) })
	return nil
}

func (m *Memory) entry(ctx context.Context, rec Record) (memoryEntry, error) {
	if err := ctx.Err(); err != nil {
		return memoryEntry{}, err
	}
	b, err := rec.MarshalBinary()
	if err != nil {
		return memoryEntry{}, err
	}
	return memoryEntry{rec: string(b), expires: rec.Expires.UnixNano()}, nil
}

func (m *Memory) sweepEvery(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.sweep(now)
		}
	}
}

func (m *Memory) sweep(now time.Time) {
	n := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.entries {
		if e.expires <= n {
			m.unindex(k, e)
			delete(m.entries, k)
		}
	}
	for k, until := range m.claims {
		if until <= n {
			delete(m.claims, k)
		}
	}
}

var (
	_ Store     = (*Memory)(nil)
	_ Lister    = (*Memory)(nil)
	_ UserIndex = (*Memory)(nil)
)
