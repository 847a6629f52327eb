package password

import (
	"iter"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
	"go.uber.org/zap"
)

// DB holds the users who may log in: the inline ones, and those of the
// users file, which is read again when its size or modification time
// changes. Lookups read an immutable snapshot without locks.
//
// A failed check takes as long whoever the user is: an unknown user is
// compared against a hash of the costliest class, and a failure against a
// cheaper hash waits for the difference. How long each class takes is
// measured in the background when it is first loaded, and kept up to date
// with the comparisons that logins make anyway.
type DB struct {
	inline map[string]*account
	path   string
	logger *zap.Logger
	clock  clock
	// timing counts the background measurements in flight.
	timing sync.WaitGroup

	users    atomic.Pointer[userSet]
	nextStat atomic.Int64 // unix nanoseconds: when the users file may be stat'ed again

	mu        sync.Mutex // serialises reading the file and publishing users
	fromFile  map[string]*account
	stamp     fileStamp
	lastErr   string    // the last users file error logged
	badStamp  fileStamp // the file as it was when it failed to parse,
	badErr    error     // and why
	measuring map[string]bool
}

// userSet is one immutable snapshot of the users.
type userSet struct {
	accounts map[string]*account
	// classes holds one account of each class (the first by name), in
	// the order of their names: the candidates to compare unknown users
	// against.
	classes []*account
}

// statEvery is how often Fingerprint and Groups look for a changed
// users file.
const statEvery = time.Second

// Open checks the users and reads the users file at usersFile (none if
// ""). An error names the user or the file's line that is wrong. Once
// open, a users file that changes is read again; one that has become
// wrong is logged to logger, and the users read before are kept.
func Open(users []User, usersFile string, logger *zap.Logger) (*DB, error) {
	return open(users, usersFile, logger, processClock)
}

func open(users []User, path string, logger *zap.Logger, c clock) (*DB, error) {
	inline, err := inlineAccounts(users)
	if err != nil {
		return nil, err
	}
	db := &DB{
		inline:    inline,
		path:      path,
		logger:    logger,
		clock:     c,
		measuring: map[string]bool{},
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if path != "" {
		db.nextStat.Store(time.Now().Add(statEvery).UnixNano())
		if err := db.reloadLocked(); err != nil {
			return nil, err
		}
	} else {
		db.publishLocked()
	}
	return db, nil
}

// publishLocked makes a new snapshot of the users: the inline ones over
// those of the file. Classes that have not been measured yet are measured
// in the background.
func (db *DB) publishLocked() {
	accounts := make(map[string]*account, len(db.inline)+len(db.fromFile))
	for n, a := range db.fromFile {
		accounts[n] = a
	}
	for n, a := range db.inline {
		accounts[n] = a
	}
	names := slices.Sorted(maps.Keys(accounts))
	set := &userSet{accounts: accounts}
	seen := map[string]bool{}
	var unmeasured []*account
	for _, n := range names {
		a := accounts[n]
		if seen[a.class] {
			continue
		}
		seen[a.class] = true
		set.classes = append(set.classes, a)
		if db.clock.took(a.class) == 0 && !db.measuring[a.class] {
			db.measuring[a.class] = true
			unmeasured = append(unmeasured, a)
		}
	}
	db.users.Store(set)

	if len(unmeasured) == 0 {
		return
	}
	db.timing.Add(1)
	go func() {
		defer db.timing.Done()
		for _, a := range unmeasured {
			db.clock.measure(a)
			db.mu.Lock()
			delete(db.measuring, a.class)
			db.mu.Unlock()
		}
	}()
}

// Check reports whether password is name's and, if it is, the fingerprint
// of name's password hash. It reads the users file again if it changed.
// A failure takes as long for an unknown user, or a known one whose hash
// is cheaper, as for a known user with the costliest hash. err is for a
// hash that cannot be compared; ok is false then.
func (db *DB) Check(name, password string) (fingerprint string, ok bool, err error) {
	db.refresh(true)
	users := db.users.Load()
	dummy, target := users.costliest(db.clock)
	acct, known := users.accounts[name]
	if !known {
		if dummy == nil {
			return "", false, nil
		}
		acct = dummy
	}
	took := db.clock.took(acct.class) // read with target, before this comparison adds to it
	start := time.Now()
	ok, err = acct.compare(password)
	db.clock.observe(acct.class, time.Since(start))
	if ok && known {
		return acct.fp, true, err
	}
	if took > 0 && target > took {
		db.clock.sleep(target - took)
	}
	return "", false, err
}

// Fingerprint returns the fingerprint of user name's current password
// hash and whether the user exists now. It is cheap enough for every
// request: the users file is checked for changes at most once a second
// (a stat), never on every call.
func (db *DB) Fingerprint(name string) (fingerprint string, ok bool) {
	db.refresh(false)
	acct, ok := db.users.Load().accounts[name]
	if !ok {
		return "", false
	}
	return acct.fp, true
}

// Accepts implements identity.Source: a session logged in with a
// password is a login while its user exists and the user's password hash
// has the fingerprint recorded at login. A user removed from the
// configuration or the users file, or whose password changed, loses
// every session at once.
func (db *DB) Accepts(rec sessionstore.Record) bool {
	fp, ok := db.Fingerprint(rec.User)
	return ok && rec.Fingerprint != "" && fp == rec.Fingerprint
}

// Groups returns the groups of user name as they are now, nil for an
// unknown user or one without groups. The slice is shared: the caller
// must not change it.
func (db *DB) Groups(name string) []string {
	db.refresh(false)
	if acct, ok := db.users.Load().accounts[name]; ok {
		return acct.groups
	}
	return nil
}

// GroupSet returns the groups of user name as they are now, as a set
// made once when the user was loaded; nil for an unknown user, one
// without groups, or a nil DB.
func (db *DB) GroupSet(name string) *identity.Groups {
	if db == nil {
		return nil
	}
	db.refresh(false)
	if acct, ok := db.users.Load().accounts[name]; ok {
		return acct.groupSet
	}
	return nil
}

// Count returns how many users there are, as last read.
func (db *DB) Count() int { return len(db.users.Load().accounts) }

// All yields each user's name and groups, as last read, in no order.
// The groups are shared: the caller must not change them.
func (db *DB) All() iter.Seq2[string, []string] {
	accounts := db.users.Load().accounts
	return func(yield func(string, []string) bool) {
		for name, a := range accounts {
			if !yield(name, a.groups) {
				return
			}
		}
	}
}

var _ identity.Source = (*DB)(nil)
