package mfa

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzCodes feeds what a client sends (a code, a recovery code, a secret
// at enrolment) to the service: no panic, and nothing passes that is not
// the right code of the window.
func FuzzCodes(f *testing.F) {
	ctx := context.Background()
	clk := newClock(t0)
	s := newService(f, nil, nil, clk)
	secret := enrol(f, s, clk, "alice")
	window := map[string]bool{}
	for _, d := range []int{-30, 0, 30} {
		window[code(f, secret, t0.Add(time.Duration(d)*time.Second))] = true
	}
	if _, err := s.NewRecoveryCodes(ctx, "alice"); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "123456", "123 456", "12345-6", "abcde-fghjk", "ABCDEFGHJK", "0o1Il", secret, strings.ToLower(secret), "\x00\xff", "١٢٣٤٥٦"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		err := s.VerifyTOTP(ctx, "alice", in)
		norm := strings.NewReplacer(" ", "", "-", "").Replace(in)
		if err == nil && !window[norm] {
			t.Errorf("VerifyTOTP(%q) passed", in)
		}
		if err != nil && !errors.Is(err, ErrBadCode) && !errors.Is(err, ErrCodeUsed) {
			t.Errorf("VerifyTOTP(%q): %v", in, err)
		}
		if err := s.UseRecoveryCode(ctx, "alice", in); !errors.Is(err, ErrBadCode) {
			t.Errorf("UseRecoveryCode(%q): %v", in, err)
		}
		err = s.EnrolTOTP(ctx, "bob", in, "123456")
		if !errors.Is(err, ErrBadSecret) && !errors.Is(err, ErrBadCode) && err != nil {
			t.Errorf("EnrolTOTP(secret %q): %v", in, err)
		}
	})
}
