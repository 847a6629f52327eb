package caddymodule

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// account is one user's password hash and the comparer for its algorithm.
type account struct {
	hash     []byte
	comparer caddyauth.Comparer
}

// userDB holds the users who may log in: the inline ones, and those of the
// users file, which is read again when its size or modification time
// changes (checked at each login attempt).
type userDB struct {
	inline map[string]account
	path   string
	logger *zap.Logger

	mu       sync.Mutex
	fromFile map[string]account
	stamp    fileStamp
	// dummy is compared against for unknown users, so that they take as
	// long as known ones: the hash of a real user, same algorithm and
	// cost, or Caddy's bcrypt fake hash when there are no users.
	dummy account
}

type fileStamp struct {
	size    int64
	modTime time.Time
}

func newUserDB(users []User, path string, logger *zap.Logger) (*userDB, error) {
	db := &userDB{inline: map[string]account{}, path: path, logger: logger}
	for _, u := range users {
		if _, dup := db.inline[u.Name]; dup {
			return nil, fmt.Errorf("user %q is given twice", u.Name)
		}
		acct, err := parseHash(u.Hash)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		db.inline[u.Name] = acct
	}
	db.pickDummy()
	if path != "" {
		if err := db.reload(); err != nil {
			return nil, err
		}
	}
	if len(db.inline) == 0 && len(db.fromFile) == 0 {
		logger.Warn("no users configured: the login page will refuse everyone (upstream control can still log users in)")
	}
	return db, nil
}

// parseHash recognises a hash printed by `caddy hash-password`.
func parseHash(hash string) (account, error) {
	b := []byte(hash)
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if _, err := bcrypt.Cost(b); err != nil {
			return account{}, fmt.Errorf("bad bcrypt hash: %w", err)
		}
		return account{hash: b, comparer: caddyauth.BcryptHash{}}, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		_, key, err := caddyauth.DecodeHash(b)
		if err == nil {
			err = checkArgon2idParams(hash, key)
		}
		if err != nil {
			return account{}, fmt.Errorf("bad argon2id hash: %w", err)
		}
		return account{hash: b, comparer: caddyauth.Argon2idHash{}}, nil
	}
	return account{}, fmt.Errorf("not a bcrypt or argon2id hash (make one with `caddy hash-password`)")
}

// checkArgon2idParams rejects what caddyauth.DecodeHash accepts but cannot
// be used: no iterations, no threads or an empty key (argon2 panics at the
// first login), and a short key (a 1-byte one matches 1 password in 256).
func checkArgon2idParams(hash string, key []byte) error {
	if len(key) < 16 {
		return fmt.Errorf("key of %d bytes; want at least 16", len(key))
	}
	params := strings.Split(strings.Split(hash, "$")[3], ",") // DecodeHash checked the shape
	t, _ := strconv.ParseUint(strings.TrimPrefix(params[1], "t="), 10, 32)
	p, _ := strconv.ParseUint(strings.TrimPrefix(params[2], "p="), 10, 8)
	if t < 1 || p < 1 {
		return fmt.Errorf("t=%d, p=%d; both must be at least 1", t, p)
	}
	return nil
}

// parseUsersFile reads "name:hash" lines. Blank lines and lines starting
// with '#' are skipped; anything else that is not a valid user is an error
// naming the line.
func parseUsersFile(r io.Reader) (map[string]account, error) {
	users := map[string]account{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want name:hash", n)
		}
		if err := validUsername(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("line %d: user %q is given twice", n, name)
		}
		acct, err := parseHash(hash)
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

// reload reads the users file if it changed (and picks the dummy hash
// again). On error the users read before are kept.
func (db *userDB) reload() error {
	fi, err := os.Stat(db.path)
	if err != nil {
		return fmt.Errorf("users_file: %w", err)
	}
	stamp := fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	if stamp == db.stamp && db.fromFile != nil {
		return nil
	}
	data, err := os.ReadFile(db.path)
	if err != nil {
		return fmt.Errorf("users_file: %w", err)
	}
	users, err := parseUsersFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("users_file %s: %w", db.path, err)
	}
	db.fromFile, db.stamp = users, stamp
	db.pickDummy()
	return nil
}

func (db *userDB) pickDummy() {
	names := make([]string, 0, len(db.inline)+len(db.fromFile))
	for n := range db.inline {
		names = append(names, n)
	}
	for n := range db.fromFile {
		names = append(names, n)
	}
	sort.Strings(names)
	db.dummy = account{hash: caddyauth.BcryptHash{}.FakeHash(), comparer: caddyauth.BcryptHash{}}
	if len(names) > 0 {
		db.dummy, _ = db.lookup(names[0])
	}
}

func (db *userDB) lookup(name string) (account, bool) {
	if a, ok := db.inline[name]; ok {
		return a, true
	}
	a, ok := db.fromFile[name]
	return a, ok
}

// fingerprint is a stand-in until the users branch lands.
func (db *userDB) fingerprint(name string) (string, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	a, ok := db.lookup(name)
	if !ok {
		return "", false
	}
	sum := sha256.Sum256(append([]byte("edgesession password fingerprint\x00"), a.hash...))
	return hex.EncodeToString(sum[:16]), true
}

// check reports whether password is name's. Unknown users are compared
// against a real hash too and take as long.
func (db *userDB) check(name, password string) (string, bool, error) {
	ok, err := db.checkOld(name, password)
	if !ok {
		return "", false, err
	}
	fp, _ := db.fingerprint(name)
	return fp, true, err
}

func (db *userDB) checkOld(name, password string) (bool, error) {
	db.mu.Lock()
	if db.path != "" {
		if err := db.reload(); err != nil {
			db.logger.Error("cannot read users file; keeping the users read before", zap.Error(err))
		}
	}
	acct, known := db.lookup(name)
	if !known {
		acct = db.dummy
	}
	db.mu.Unlock()
	ok, err := acct.comparer.Compare(acct.hash, []byte(password))
	return ok && known, err
}

// validUsername accepts a name that can be shown and sent in a header:
// valid UTF-8, 1 to 256 bytes, no control characters, no ':' (the users
// file separator) and no leading or trailing space.
func validUsername(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty user name")
	case len(name) > 256:
		return fmt.Errorf("user name longer than 256 bytes")
	case !utf8.ValidString(name):
		return fmt.Errorf("user name is not valid UTF-8")
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("user name starts or ends with space")
	case strings.ContainsRune(name, ':'):
		return fmt.Errorf("user name contains ':'")
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("user name contains a control character")
	}
	return nil
}
