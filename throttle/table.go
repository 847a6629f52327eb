package throttle

import (
	"sync"
	"time"
)

// failureCount is a count of failures and when its window ends.
type failureCount struct {
	n   int
	end time.Time
}

// table holds counts in a process: failures (unless they are in Redis)
// and attempts in flight. The process's own (processTable) is shared by
// every throttle New returns, so that a config reload does not wipe out a
// lockout. Failure windows sit in a list in the order
// they started: ended ones drop from the front a few at a time as
// failures come in, and at capacity the oldest is dropped. An attempt
// costs O(1) work, and memory stays bounded under any flood.
type table struct {
	mu       sync.Mutex
	capacity int
	windows  map[key]*failureWindow
	oldest   *failureWindow
	newest   *failureWindow
	inFlight map[key]int
}

type failureWindow struct {
	key          key
	n            int
	end          time.Time
	older, newer *failureWindow
}

// maxWindows bounds the process's failure windows: about 14 MB.
const maxWindows = 100_000

// dropPerAdd is how many ended windows counting a failure drops at most:
// more than the one it may add, so that ended windows do not pile up.
const dropPerAdd = 2

// processTable is the table every throttle of the process shares (New).
var processTable = newTable(maxWindows)

func newTable(capacity int) *table {
	return &table{capacity: capacity, windows: map[key]*failureWindow{}, inFlight: map[key]int{}}
}

// The methods below are called with mu held.

func (tb *table) count(k key, now time.Time) failureCount {
	if w := tb.windows[k]; w != nil && now.Before(w.end) {
		return failureCount{n: w.n, end: w.end}
	}
	return failureCount{}
}

// add counts a failure, starting a new window if k has none.
func (tb *table) add(k key, now time.Time, window time.Duration) {
	for i := 0; i < dropPerAdd && tb.oldest != nil && !now.Before(tb.oldest.end); i++ {
		tb.remove(tb.oldest)
	}
	w := tb.windows[k]
	if w != nil && now.Before(w.end) {
		w.n++
		return
	}
	if w != nil {
		tb.remove(w)
	} else if len(tb.windows) >= tb.capacity {
		tb.remove(tb.oldest)
	}
	w = &failureWindow{key: k, n: 1, end: now.Add(window), older: tb.newest}
	if tb.newest != nil {
		tb.newest.newer = w
	} else {
		tb.oldest = w
	}
	tb.newest = w
	tb.windows[k] = w
}

// remove forgets w; w may be nil.
func (tb *table) remove(w *failureWindow) {
	if w == nil {
		return
	}
	if w.older != nil {
		w.older.newer = w.newer
	} else {
		tb.oldest = w.newer
	}
	if w.newer != nil {
		w.newer.older = w.older
	} else {
		tb.newest = w.older
	}
	delete(tb.windows, w.key)
}

func (tb *table) release(ks attemptKeys) {
	for _, k := range []key{ks.user, ks.client} {
		if tb.inFlight[k]--; tb.inFlight[k] <= 0 {
			delete(tb.inFlight, k)
		}
	}
}
