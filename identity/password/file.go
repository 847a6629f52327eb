package password

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"strings"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/internal/files"
	"go.uber.org/zap"
)

// maxUsersFile bounds the users file.
const maxUsersFile = 64 << 20

type fileStamp struct {
	size    int64
	modTime time.Time
}

// CheckFile reads and parses the users file at path as Open would, and
// returns what is wrong with it, naming the file and the line.
func CheckFile(path string) error {
	_, _, err := readUsersFile(path)
	return err
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
	data, err := files.ReadAtMost(path, maxUsersFile)
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
func (db *DB) reloadLocked() error {
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

func (db *DB) readFileLocked() error {
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
func (db *DB) refresh(force bool) {
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
