package password

import (
	"sync"
	"sync/atomic"
	"time"
)

// clock times password comparisons and pads them; tests replace it.
type clock interface {
	// took is how long comparing against a hash of class takes, 0 while
	// it is not known.
	took(class string) time.Duration
	// observe records a comparison of class that took d.
	observe(class string, d time.Duration)
	// measure finds out how long comparing against a's hash takes (slow;
	// run in the background).
	measure(a *account)
	sleep(d time.Duration)
}

// costliest returns the account that unknown users are compared against:
// one of the class that takes longest, measured where it has been,
// guessed where not, and how long that takes (0 if not measured yet). It
// is nil when there are no users: there is nothing to hide.
func (u *userSet) costliest(c clock) (dummy *account, took time.Duration) {
	var cost time.Duration
	for _, a := range u.classes {
		t := c.took(a.class)
		est := t
		if est == 0 {
			est = a.guess
		}
		if dummy == nil || est > cost {
			dummy, took, cost = a, t, est
		}
	}
	return dummy, took
}

// processClock is the clock of every DB of the process: the hardware
// does not change with a config reload, and measuring bcrypt at cost 14
// takes seconds.
var processClock = &quickestClock{}

// quickestClock keeps, for each class, the quickest comparison seen.
// Contention (other requests, other processes) only ever makes a
// comparison slower, so the quickest is the closest to the hash's own
// cost, and the same measure for every class.
type quickestClock struct {
	byClass sync.Map // class → *atomic.Int64, nanoseconds
}

func (c *quickestClock) took(class string) time.Duration {
	if v, ok := c.byClass.Load(class); ok {
		return time.Duration(v.(*atomic.Int64).Load())
	}
	return 0
}

func (c *quickestClock) observe(class string, d time.Duration) {
	if d <= 0 {
		return
	}
	v, _ := c.byClass.LoadOrStore(class, new(atomic.Int64))
	best := v.(*atomic.Int64)
	for {
		old := best.Load()
		if old != 0 && old <= int64(d) || best.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// measure compares a wrong password against a's hash three times.
func (c *quickestClock) measure(a *account) {
	for range 3 {
		start := time.Now()
		a.compare("edgesession timing probe")
		c.observe(a.class, time.Since(start))
	}
}

func (c *quickestClock) sleep(d time.Duration) { time.Sleep(d) }
