package password

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	return bcryptHashCost(t, password, bcrypt.MinCost)
}

func bcryptHashCost(t *testing.T, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// argonHash is an argon2id hash in Caddy's format with tiny parameters.
func argonHash(password string) string {
	salt := []byte("edgesession-salt")
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s", argon2.Version,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// fakeTiming is a clock whose classes take what took says once they are
// measured (after release is closed, if it is set), and whose sleeps are
// recorded, not slept.
type fakeTiming struct {
	times   map[string]time.Duration
	release chan struct{}

	mu       sync.Mutex
	measured []string
	observed []string // the class of each comparison check made
	slept    []time.Duration
}

func (f *fakeTiming) took(class string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(f.measured, class) {
		return f.times[class]
	}
	return 0
}

func (f *fakeTiming) measure(a *account) {
	if f.release != nil {
		<-f.release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.measured = append(f.measured, a.class)
}

func (f *fakeTiming) observe(class string, _ time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observed = append(f.observed, class)
}

func (f *fakeTiming) sleep(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slept = append(f.slept, d)
}

// sleeps returns the sleeps since the last call.
func (f *fakeTiming) sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.slept
	f.slept = nil
	return s
}

// compared returns the classes compared against since the last call.
func (f *fakeTiming) compared() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.observed
	f.observed = nil
	return s
}

func openFake(t *testing.T, users []User, path string, f *fakeTiming) *DB {
	t.Helper()
	db, err := open(users, path, zap.NewNop(), f)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestUnknownUsersAreComparedAgainstTheCostliestHash(t *testing.T) {
	cheap, costlier, argon := bcryptHash(t, "cheap-pw"), bcryptHashCost(t, "bob-pw", 5), argonHash("argon-pw")
	f := &fakeTiming{release: make(chan struct{}), times: map[string]time.Duration{
		"bcrypt cost=4":                    time.Millisecond,
		"bcrypt cost=5":                    200 * time.Millisecond,
		"argon2id m=64,t=1,p=1,k=32":       500 * time.Millisecond,
		"argon2id never configured at all": time.Hour,
	}}
	db := openFake(t, []User{{Name: "zed", Hash: cheap}, {Name: "amy", Hash: argon}, {Name: "bob", Hash: costlier}}, "", f)

	// Before anything is measured, the work factors decide: bcrypt cost
	// 5 is costlier than cost 4 and than argon2id with 64 KiB. Nothing
	// is padded to a time that is not known.
	if dummy, target := db.users.Load().costliest(f); string(dummy.hash) != costlier || target != 0 {
		t.Fatalf("before measuring: dummy %q, target %v; want the cost-5 hash and none", dummy.hash, target)
	}
	if _, ok, _ := db.Check("zed", "wrong"); ok || len(f.sleeps()) != 0 {
		t.Fatal("a failure was padded before the classes were measured")
	}
	close(f.release)
	db.timing.Wait()

	// Measured, the argon2id hash is the slowest: unknown users are
	// compared against it, and the others are padded up to it.
	if dummy, target := db.users.Load().costliest(f); string(dummy.hash) != argon || target != 500*time.Millisecond {
		t.Fatalf("dummy %q, target %v; want the argon2id hash (measured slowest), 500ms", dummy.hash, target)
	}
	slices.Sort(f.measured)
	if !slices.Equal(f.measured, []string{"argon2id m=64,t=1,p=1,k=32", "bcrypt cost=4", "bcrypt cost=5"}) {
		t.Fatalf("measured %q, want each class once", f.measured)
	}

	f.compared()
	const argonClass = "argon2id m=64,t=1,p=1,k=32"
	for _, tt := range []struct {
		name, password string
		ok             bool
		compared       string
		slept          []time.Duration
	}{
		{"zed", "wrong", false, "bcrypt cost=4", []time.Duration{499 * time.Millisecond}},
		{"bob", "wrong", false, "bcrypt cost=5", []time.Duration{300 * time.Millisecond}},
		{"zed", "cheap-pw", true, "bcrypt cost=4", nil}, // a success is not padded: it says so anyway
		{"amy", "wrong", false, argonClass, nil},
		{"amy", "argon-pw", true, argonClass, nil},
		{"nobody", "argon-pw", false, argonClass, nil}, // the dummy's password is no login
		{"nobody", "cheap-pw", false, argonClass, nil},
	} {
		fp, ok, err := db.Check(tt.name, tt.password)
		if ok != tt.ok || err != nil || (fp != "") != tt.ok {
			t.Errorf("Check(%q, %q) = %q, %v, %v; want ok %v", tt.name, tt.password, fp, ok, err, tt.ok)
		}
		if got := f.compared(); !slices.Equal(got, []string{tt.compared}) {
			t.Errorf("Check(%q, %q) compared against %q, want %q", tt.name, tt.password, got, tt.compared)
		}
		if got := f.sleeps(); !slices.Equal(got, tt.slept) {
			t.Errorf("Check(%q, %q) slept %v, want %v", tt.name, tt.password, got, tt.slept)
		}
	}
}

func TestNoUsersNoComparison(t *testing.T) {
	db := openFake(t, nil, "", &fakeTiming{})
	if fp, ok, err := db.Check("anyone", "x"); ok || fp != "" || err != nil {
		t.Fatalf("check with no users = %q, %v, %v", fp, ok, err)
	}
}

func TestQuickestClock(t *testing.T) {
	c := &quickestClock{}
	if got := c.took("bcrypt cost=4"); got != 0 {
		t.Fatalf("took before any comparison = %v", got)
	}
	// Contention only slows a comparison down: the quickest one counts.
	for _, d := range []time.Duration{5 * time.Millisecond, 3 * time.Millisecond, 0, 4 * time.Millisecond} {
		c.observe("bcrypt cost=4", d)
	}
	if got := c.took("bcrypt cost=4"); got != 3*time.Millisecond {
		t.Fatalf("took = %v, want the quickest, 3ms", got)
	}
	a, err := parseHash(argonHash("x"))
	if err != nil {
		t.Fatal(err)
	}
	c.measure(a)
	if c.took(a.class) <= 0 || c.took("bcrypt cost=4") != 3*time.Millisecond {
		t.Fatalf("after measuring %s: %v", a.class, c.took(a.class))
	}
}

// countingComparer records what it was given and says yes to everything.
type countingComparer struct{ got [][]byte }

func (c *countingComparer) Compare(hashed, plaintext []byte) (bool, error) {
	c.got = append(c.got, plaintext)
	return true, nil
}

func TestBcryptRefusesPasswordsOver72Bytes(t *testing.T) {
	pw := strings.Repeat("0123456789abcdef", 4) + "ghijklmn" // 72 bytes
	if len(pw) != 72 {
		t.Fatal(len(pw))
	}
	f := &fakeTiming{times: map[string]time.Duration{"bcrypt cost=4": time.Millisecond, "argon2id m=64,t=1,p=1,k=32": 9 * time.Millisecond}}
	db := openFake(t, []User{{Name: "long", Hash: bcryptHash(t, pw)}, {Name: "amy", Hash: argonHash("a")}}, "", f)
	db.timing.Wait()
	if _, ok, _ := db.Check("long", pw); !ok {
		t.Fatal("the 72-byte password was refused")
	}
	for _, tail := range []string{"x", "anything at all", strings.Repeat("y", 500)} {
		if _, ok, _ := db.Check("long", pw+tail); ok {
			t.Fatalf("the 72-byte password + %q logged in", tail)
		}
		// A failure like any other: padded as a wrong password is.
		if got := f.sleeps(); !slices.Equal(got, []time.Duration{8 * time.Millisecond}) {
			t.Fatalf("too long a password slept %v, want the padding of its class", got)
		}
	}
	if _, ok, _ := db.Check("long", pw[:71]); ok {
		t.Fatal("a 71-byte prefix logged in")
	}

	// It does the same work as a right password: bcrypt is given the 72
	// bytes it would read, and its answer is overruled.
	c := &countingComparer{}
	a := &account{hash: []byte("h"), comparer: c, maxPassword: bcryptMaxPassword}
	if ok, _ := a.compare(pw + "tail"); ok || len(c.got) != 1 || string(c.got[0]) != pw {
		t.Fatalf("compare(73+ bytes) = %v, comparer given %q", ok, c.got)
	}
	// argon2id reads every byte: no limit.
	if acct, _ := parseHash(argonHash("a")); acct.maxPassword != 0 {
		t.Fatalf("argon2id maxPassword = %d", acct.maxPassword)
	}
}

func wantFingerprint(hash string) string {
	sum := sha256.Sum256([]byte("edgesession password fingerprint\x00" + hash))
	return hex.EncodeToString(sum[:16])
}

// touch gives path a new modification time, so that a rewrite of the
// same size is seen as a change whatever the file system's resolution.
func touch(t *testing.T, path string, n int) {
	t.Helper()
	when := time.Unix(1_700_000_000+int64(n), 0)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func writeUsers(t *testing.T, path, content string, n int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	touch(t, path, n)
}

func TestFingerprintAndGroups(t *testing.T) {
	aliceHash, bobHash, bobNewHash := bcryptHash(t, "alice-pw"), bcryptHash(t, "bob-pw"), bcryptHash(t, "bob-new-pw")
	path := filepath.Join(t.TempDir(), "users")
	writeUsers(t, path, "bob:"+bobHash+":staff,ops\n", 1)
	db := openFake(t, []User{{Name: "alice", Hash: aliceHash, Groups: []string{"admin"}}}, path, &fakeTiming{})

	if fp, ok := db.Fingerprint("alice"); !ok || fp != wantFingerprint(aliceHash) || len(fp) != 32 {
		t.Fatalf("Fingerprint(alice) = %q, %v; want %q", fp, ok, wantFingerprint(aliceHash))
	}
	if fp, ok := db.Fingerprint("bob"); !ok || fp != wantFingerprint(bobHash) {
		t.Fatalf("Fingerprint(bob) = %q, %v", fp, ok)
	}
	if fp, ok := db.Fingerprint("nobody"); ok || fp != "" {
		t.Fatalf("Fingerprint(nobody) = %q, %v", fp, ok)
	}
	if fp, ok, _ := db.Check("bob", "bob-pw"); !ok || fp != wantFingerprint(bobHash) {
		t.Fatalf("Check(bob) = %q, %v; want his fingerprint", fp, ok)
	}
	if g := db.Groups("alice"); !slices.Equal(g, []string{"admin"}) {
		t.Fatalf("Groups(alice) = %q", g)
	}
	if g := db.Groups("bob"); !slices.Equal(g, []string{"staff", "ops"}) {
		t.Fatalf("Groups(bob) = %q", g)
	}
	if g := db.Groups("nobody"); g != nil {
		t.Fatalf("Groups(nobody) = %q", g)
	}

	// Bob's password changes. Until the next look at the file (at most a
	// second away), fingerprint and groups answer from what they have.
	writeUsers(t, path, "bob:"+bobNewHash+":staff\n", 2)
	db.nextStat.Store(time.Now().Add(time.Hour).UnixNano())
	if fp, _ := db.Fingerprint("bob"); fp != wantFingerprint(bobHash) {
		t.Fatal("fingerprint looked at the file before its time")
	}
	db.nextStat.Store(0) // the second has passed
	if fp, ok := db.Fingerprint("bob"); !ok || fp != wantFingerprint(bobNewHash) {
		t.Fatalf("after the change: Fingerprint(bob) = %q, %v; want the new hash's", fp, ok)
	}
	if next := time.Unix(0, db.nextStat.Load()); time.Until(next) < statEvery/2 {
		t.Fatalf("the next look at the file is due at %v, not about a second on", next)
	}
	if g := db.Groups("bob"); !slices.Equal(g, []string{"staff"}) {
		t.Fatalf("Groups(bob) after the change = %q", g)
	}

	// Bob is removed: check sees it at once, fingerprint at its next look.
	writeUsers(t, path, "# nobody here\n", 3)
	if _, ok, _ := db.Check("bob", "bob-new-pw"); ok {
		t.Fatal("check let a removed user in")
	}
	if _, ok := db.Fingerprint("bob"); ok {
		t.Fatal("a removed user still has a fingerprint")
	}
	if g := db.Groups("bob"); g != nil {
		t.Fatalf("a removed user has groups %q", g)
	}
	if _, ok := db.Fingerprint("alice"); !ok {
		t.Fatal("the inline user went with the file's")
	}
}

func TestBrokenUsersFileIsLoggedOnceAndKeepsTheUsers(t *testing.T) {
	bobHash := bcryptHash(t, "bob-pw")
	path := filepath.Join(t.TempDir(), "users")
	writeUsers(t, path, "bob:"+bobHash+"\n", 1)
	core, logs := observer.New(zapcore.ErrorLevel)
	db, err := open(nil, path, zap.New(core), &fakeTiming{})
	if err != nil {
		t.Fatal(err)
	}
	writeUsers(t, path, "bob:"+bobHash+"\nthis line is broken\n", 2)
	for range 3 {
		if _, ok, _ := db.Check("bob", "bob-pw"); !ok {
			t.Fatal("bob was lost when the file broke")
		}
		db.nextStat.Store(0)
		db.Fingerprint("bob")
	}
	if n := logs.FilterMessage("cannot read users file; keeping the users read before").Len(); n != 1 {
		t.Fatalf("the broken file was logged %d times, want once", n)
	}
	if err := logs.All()[0].ContextMap()["error"]; !strings.Contains(fmt.Sprint(err), "line 2") {
		t.Fatalf("the log does not name the line: %v", err)
	}
	// Fixed, then broken again: logged again.
	writeUsers(t, path, "bob:"+bobHash+"\n", 3)
	db.Check("bob", "bob-pw")
	writeUsers(t, path, "bob:"+bobHash+"\nthis line is broken\n", 4)
	db.Check("bob", "bob-pw")
	if n := logs.Len(); n != 2 {
		t.Fatalf("%d error logs, want 2", n)
	}
	// A file that is not there at the start is a config error.
	if _, err := open(nil, path+".missing", zap.NewNop(), &fakeTiming{}); err == nil || !strings.Contains(err.Error(), "users_file") {
		t.Fatalf("a missing users file: %v", err)
	}
}

func TestUserDBConcurrentReloads(t *testing.T) {
	hashes := []string{bcryptHash(t, "one"), bcryptHash(t, "two")}
	path := filepath.Join(t.TempDir(), "users")
	writeUsers(t, path, "bob:"+hashes[0]+":a\n", 0)
	db := openFake(t, nil, path, &fakeTiming{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				db.nextStat.Store(0)
				if fp, ok := db.Fingerprint("bob"); ok && fp != wantFingerprint(hashes[0]) && fp != wantFingerprint(hashes[1]) {
					t.Errorf("fingerprint %q is neither hash's", fp)
				}
				db.Groups("bob")
			}
		})
	}
	for i := 1; i <= 20; i++ {
		writeUsers(t, path, "bob:"+hashes[i%2]+":a,b\n", i)
		db.Check("bob", "one")
	}
	close(stop)
	wg.Wait()
}
