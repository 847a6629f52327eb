package password

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/edgesession/edgesession/identity"
)

// User is one user who may log in.
type User struct {
	// Name is the login name.
	Name string `json:"name"`
	// Hash is the password hash from `caddy hash-password`. bcrypt reads
	// only the first 72 bytes of a password, so a longer password is
	// refused for a bcrypt hash.
	Hash string `json:"hash"`
	// Groups the user belongs to. A group name has no space, comma or
	// control character.
	Groups []string `json:"groups,omitempty"`
}

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
	// groupSet is groups as forwarded and judged.
	groupSet *identity.Groups
}

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
	acct.groupSet = identity.NewGroups(acct.groups)
	acct.fp = passwordFingerprint(acct.hash)
	return acct, nil
}

// inlineAccounts checks the users given in the configuration.
func inlineAccounts(users []User) (map[string]*account, error) {
	accounts := map[string]*account{}
	for _, u := range users {
		if err := identity.ValidUsername(u.Name); err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		if _, dup := accounts[u.Name]; dup {
			return nil, fmt.Errorf("user %q is given twice", u.Name)
		}
		acct, err := newAccount(u.Hash, u.Groups)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		accounts[u.Name] = acct
	}
	return accounts, nil
}

// CheckHash reports what Open would find wrong with a user's hash (one
// printed by `caddy hash-password`) and groups, without the user's name.
func CheckHash(hash string, groups []string) error {
	_, err := newAccount(hash, groups)
	return err
}
