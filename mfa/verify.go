package mfa

import (
	"context"
	"errors"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
)

// Service is the second factors of one handler: where they are kept, where
// a used code is remembered, the keys that seal them, and the clock. It
// holds no state of its own: one Service serves every request at once, and
// instances sharing Store and Claims agree on every answer.
type Service struct {
	// Store keeps users' credentials (shared by every instance).
	Store *Store
	// Claims remembers used TOTP codes until they can no longer be valid,
	// for every instance sharing it.
	Claims sessionstore.Claimer
	// Sealer seals TOTP secrets and hashes recovery codes.
	Sealer *Sealer
	// Issuer is the name an authenticator app shows beside the account
	// (the handler's title, else its host).
	Issuer string
	// Now is the clock (nil: time.Now); tests set it.
	Now func() time.Time
}

// ErrBadCode is a code that does not prove the factor: wrong, malformed,
// of a step too far away, or for a user with no such factor enrolled (the
// same answer, so that it does not tell who has one).
var ErrBadCode = errors.New("mfa: wrong code")

// ErrCodeUsed is a right TOTP code that was already accepted once (on any
// instance): a replay, or the user submitting twice.
var ErrCodeUsed = errors.New("mfa: code already used")

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// RemoveTOTP removes user's TOTP authenticator. With it the recovery codes
// go too if no other factor is left: they are a way back to a factor, and
// codes printed for one removed must not outlive it into the next one
// enrolled. Removing what is not there is not an error.
func (s *Service) RemoveTOTP(ctx context.Context, user string) error {
	_, err := s.Store.Update(ctx, user, func(c **Credentials) error {
		if *c == nil || (*c).TOTP == nil {
			return nil
		}
		(*c).TOTP = nil
		if !(*c).Enrolled() {
			(*c).Recovery = nil
		}
		return nil
	})
	return err
}

// Reset removes every credential of user (TOTP, passkeys, recovery codes)
// and the passkey handle index that names them: what an operator does for a
// user who lost their authenticator. The next login asks for the password
// only (or sends to enrolment if the policy requires a factor). Removing
// nothing is not an error. It is Reset (mfa/reset.go) on the service's
// vault.
func (s *Service) Reset(ctx context.Context, user string) error {
	_, err := Reset(ctx, s.Store.Vault, user)
	return err
}
