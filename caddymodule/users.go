package caddymodule

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/edgesession/edgesession/identity"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// account is one user: a password hash, the comparer for its algorithm,
// and what is worked out from them once, when the account is loaded.
type account struct {
	hash     []byte
	comparer caddyauth.Comparer
	// maxPassword is the longest password the algorithm reads in full
	// (72 bytes for bcrypt); 0 means no limit.
	maxPassword int
	// class is the algorithm and its work factor: comparisons against
	// hashes of one class take the same time.
	class string
	// guess is how long a comparison should take, used until the class
	// has been measured.
	guess time.Duration
	// fp is the password fingerprint (see passwordFingerprint).
	fp     string
	groups []string
	// groupSet is groups as forwarded and judged (see groups.go).
	groupSet *groupSet
}

// bcryptMaxPassword is how much of a password bcrypt reads.
const bcryptMaxPassword = 72

// compare reports whether password is the account's. A password longer
// than the algorithm reads is refused, after the same work as any other.
func (a *account) compare(password string) (bool, error) {
	pw := []byte(password)
	tooLong := a.maxPassword > 0 && len(pw) > a.maxPassword
	if tooLong {
		pw = pw[:a.maxPassword]
	}
	ok, err := a.comparer.Compare(a.hash, pw)
	return ok && !tooLong, err
}

// passwordFingerprint identifies a password hash without revealing it: a
// session records it at login, and is no longer valid once the user's
// hash changes (as Django's session auth hash).
func passwordFingerprint(hash []byte) string {
	sum := sha256.Sum256(append([]byte("edgesession password fingerprint\x00"), hash...))
	return hex.EncodeToString(sum[:16])
}

// userDB holds the users who may log in: the inline ones, and those of the
// users file, which is read again when its size or modification time
// changes. Lookups read an immutable snapshot without locks.
//
// A failed check takes as long whoever the user is: an unknown user is
// compared against a hash of the costliest class, and a failure against a
// cheaper hash waits for the difference. How long each class takes is
// measured in the background when it is first loaded, and kept up to date
// with the comparisons that logins make anyway.
type userDB struct {
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

// userSet is one immutable snapshot of the users.
type userSet struct {
	accounts map[string]*account
	// classes holds one account of each class (the first by name), in
	// the order of their names: the candidates to compare unknown users
	// against.
	classes []*account
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

type fileStamp struct {
	size    int64
	modTime time.Time
}

// statEvery is how often fingerprint and groups look for a changed
// users file.
const statEvery = time.Second

// maxUsersFile bounds the users file.
const maxUsersFile = 64 << 20

func newUserDB(users []User, path string, logger *zap.Logger) (*userDB, error) {
	return openUserDB(users, path, logger, processClock)
}

func openUserDB(users []User, path string, logger *zap.Logger, c clock) (*userDB, error) {
	db := &userDB{
		inline:    map[string]*account{},
		path:      path,
		logger:    logger,
		clock:     c,
		measuring: map[string]bool{},
	}
	for _, u := range users {
		if err := identity.ValidUsername(u.Name); err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		if _, dup := db.inline[u.Name]; dup {
			return nil, fmt.Errorf("user %q is given twice", u.Name)
		}
		acct, err := newAccount(u.Hash, u.Groups)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		db.inline[u.Name] = acct
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

// newAccount parses a hash printed by `caddy hash-password` and checks the
// user's groups.
func newAccount(hash string, groups []string) (*account, error) {
	acct, err := parseHash(hash)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidGroups(groups); err != nil {
		return nil, err
	}
	if len(groups) > 0 {
		acct.groups = slices.Clip(slices.Clone(groups))
	}
	acct.groupSet = newGroupSet(acct.groups)
	acct.fp = passwordFingerprint(acct.hash)
	return acct, nil
}

// parseHash recognises a hash printed by `caddy hash-password`.
func parseHash(hash string) (*account, error) {
	b := []byte(hash)
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		cost, err := bcrypt.Cost(b)
		if err != nil {
			return nil, fmt.Errorf("bad bcrypt hash: %w", err)
		}
		return &account{
			hash:        b,
			comparer:    caddyauth.BcryptHash{},
			maxPassword: bcryptMaxPassword,
			class:       "bcrypt cost=" + strconv.Itoa(cost),
			// About 60 ms at cost 10.
			guess: time.Duration(1<<cost) * 58 * time.Microsecond,
		}, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		_, key, err := caddyauth.DecodeHash(b)
		if err == nil {
			err = checkArgon2idParams(hash, key)
		}
		if err != nil {
			return nil, fmt.Errorf("bad argon2id hash: %w", err)
		}
		m, t, p := argon2idParams(hash)
		return &account{
			hash:     b,
			comparer: caddyauth.Argon2idHash{},
			class:    fmt.Sprintf("argon2id m=%d,t=%d,p=%d,k=%d", m, t, p, len(key)),
			// About 1 µs per KiB and pass, shared by the lanes.
			guess: time.Duration(t*m/p) * time.Microsecond,
		}, nil
	}
	return nil, fmt.Errorf("not a bcrypt or argon2id hash (make one with `caddy hash-password`)")
}

// argon2idParams returns the memory (KiB), passes and lanes of a hash that
// caddyauth.DecodeHash and checkArgon2idParams accepted.
func argon2idParams(hash string) (m, t, p uint64) {
	params := strings.Split(strings.Split(hash, "$")[3], ",")
	m, _ = strconv.ParseUint(strings.TrimPrefix(params[0], "m="), 10, 32)
	t, _ = strconv.ParseUint(strings.TrimPrefix(params[1], "t="), 10, 32)
	p, _ = strconv.ParseUint(strings.TrimPrefix(params[2], "p="), 10, 8)
	return m, t, p
}

// checkArgon2idParams rejects what caddyauth.DecodeHash accepts but cannot
// be used: no iterations, no threads or an empty key (argon2 panics at the
// first login), and a short key (a 1-byte one matches 1 password in 256).
func checkArgon2idParams(hash string, key []byte) error {
	if len(key) < 16 {
		return fmt.Errorf("key of %d bytes; want at least 16", len(key))
	}
	_, t, p := argon2idParams(hash) // DecodeHash checked the shape
	if t < 1 || p < 1 {
		return fmt.Errorf("t=%d, p=%d; both must be at least 1", t, p)
	}
	return nil
}

// parseUsersFile reads "name:hash" and "name:hash:group,group" lines.
// Blank lines and lines starting with '#' are skipped; anything else that
// is not a valid user is an error naming the line.
func parseUsersFile(r io.Reader) (map[string]*account, error) {
	users := map[string]*account{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want name:hash or name:hash:group,group", n)
		}
		if err := identity.ValidUsername(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("line %d: user %q is given twice", n, name)
		}
		hash, groupList, hasGroups := strings.Cut(rest, ":")
		var groups []string
		if hasGroups {
			groups = strings.Split(groupList, ",")
		}
		acct, err := newAccount(hash, groups)
		if err != nil {
			return nil, fmt.Errorf("line %d: user %q: %w", n, name, err)
		}
		users[name] = acct
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

// readUsersFile reads and parses the users file at path. Errors name the
// file, and the line when it is one line that is wrong.
func readUsersFile(path string) (map[string]*account, fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("users_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fileStamp{}, fmt.Errorf("users_file %s: not a regular file", path)
	}
	data, err := readFileAtMost(path, maxUsersFile)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("users_file: %w", err)
	}
	users, err := parseUsersFile(bytes.NewReader(data))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("users_file %s: %w", path, err)
	}
	return users, fileStamp{size: fi.Size(), modTime: fi.ModTime()}, nil
}

// reloadLocked reads the users file if it changed and publishes the users.
// On error the users read before are kept; a new error is logged once.
func (db *userDB) reloadLocked() error {
	err := db.readFileLocked()
	if err == nil {
		db.lastErr = ""
		return nil
	}
	if db.fromFile != nil && err.Error() != db.lastErr {
		db.logger.Error("cannot read users file; keeping the users read before", zap.Error(err))
	}
	db.lastErr = err.Error()
	return err
}

func (db *userDB) readFileLocked() error {
	fi, err := os.Stat(db.path)
	if err != nil {
		return fmt.Errorf("users_file: %w", err)
	}
	switch (fileStamp{size: fi.Size(), modTime: fi.ModTime()}) {
	case db.stamp:
		if db.fromFile != nil {
			return nil
		}
	case db.badStamp:
		return db.badErr // unchanged since it failed
	}
	users, stamp, err := readUsersFile(db.path)
	if err != nil {
		db.badStamp, db.badErr = fileStamp{size: fi.Size(), modTime: fi.ModTime()}, err
		return err
	}
	db.fromFile, db.stamp = users, stamp
	db.publishLocked()
	return nil
}

// refresh reads the users file again if it changed. Unless force, the file
// is looked at no more than once every statEvery, by one caller; the
// others go on with the users they have.
func (db *userDB) refresh(force bool) {
	if db.path == "" {
		return
	}
	now := time.Now().UnixNano()
	next := db.nextStat.Load()
	if force {
		db.nextStat.Store(now + int64(statEvery))
	} else if now < next || !db.nextStat.CompareAndSwap(next, now+int64(statEvery)) {
		return
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	db.reloadLocked() // logged there
}

// publishLocked makes a new snapshot of the users: the inline ones over
// those of the file. Classes that have not been measured yet are measured
// in the background.
func (db *userDB) publishLocked() {
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

// processClock is the clock of every userDB of the process: the hardware
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

// check reports whether password is name's and, if it is, the fingerprint
// of name's password hash. It reads the users file again if it changed.
// A failure takes as long for an unknown user, or a known one whose hash
// is cheaper, as for a known user with the costliest hash.
func (db *userDB) check(name, password string) (fp string, ok bool, err error) {
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

// fingerprint returns the fingerprint of user name's current password
// hash and whether the user exists now. It is cheap enough for every
// request: the users file is checked for changes at most once a second
// (a stat), never on every call.
func (db *userDB) fingerprint(name string) (fp string, ok bool) {
	db.refresh(false)
	acct, ok := db.users.Load().accounts[name]
	if !ok {
		return "", false
	}
	return acct.fp, true
}

// groups returns the groups of user name, nil for an unknown user or one
// without groups. The slice is shared: the caller must not change it.
func (db *userDB) groups(name string) []string {
	db.refresh(false)
	if acct, ok := db.users.Load().accounts[name]; ok {
		return acct.groups
	}
	return nil
}
