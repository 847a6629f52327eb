package mfa

import (
	"context"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/edgesession/edgesession/sessionstore"
)

// TOTP as every authenticator app supports it (RFC 6238's defaults): a
// 20-byte secret, HMAC-SHA1, 6 digits, 30-second steps. A code is accepted
// in the step before and after the current one too (clocks of phones
// drift, and a user types for a while).
const (
	totpPeriod     = 30
	totpDigits     = otp.DigitsSix
	totpSecretSize = 20
	totpSkew       = 1
	// A secret a client sends back at enrolment is bounded: RFC 4226
	// asks for 128 bits at least, and no app uses more than 64 bytes.
	totpMinSecret = 16
	totpMaxSecret = 64
)

// ErrBadSecret is a TOTP secret given to EnrolTOTP that is not one NewTOTP
// made (not base32, too short or too long): a malformed request.
var ErrBadSecret = errors.New("mfa: malformed TOTP secret")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTP makes a new secret for user (not stored): key.URL() for the QR
// code, key.Secret() as text. EnrolTOTP stores it once the user proves
// their app has it.
func (s *Service) NewTOTP(user string) (*otp.Key, error) {
	if user == "" {
		return nil, errors.New("mfa: a TOTP secret for no user")
	}
	issuer := s.Issuer
	if issuer == "" {
		issuer = "edgesession"
	}
	return totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: user,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      totpDigits,
		Algorithm:   otp.AlgorithmSHA1,
	})
}

// EnrolTOTP checks code against secret (as NewTOTP's key.Secret() gave it)
// and stores the secret sealed, replacing any earlier one; recovery codes
// and passkeys stay. The code is claimed: it cannot then be used to log in.
// ErrBadCode if wrong (nothing is stored), ErrCodeUsed if it was used
// already, ErrBadSecret for a secret that is not one.
func (s *Service) EnrolTOTP(ctx context.Context, user, secret, code string) error {
	raw, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	if user == "" {
		return ErrBadCode
	}
	counters := s.match(raw, code)
	if len(counters) == 0 {
		return ErrBadCode
	}
	key, err := s.claimAny(ctx, user, counters)
	if err != nil {
		return err
	}
	sealed, err := s.Sealer.Seal(user, raw)
	if err == nil {
		now := s.now().UTC()
		_, err = s.Store.Update(ctx, user, func(c **Credentials) error {
			if *c == nil {
				*c = new(Credentials)
			}
			(*c).TOTP = &TOTP{Sealed: sealed, Created: now}
			return nil
		})
	}
	if err != nil {
		// Not enrolled: the user will retry with the same code.
		_ = s.Claims.Release(ctx, key)
		return err
	}
	return nil
}

// VerifyTOTP checks code for user's enrolled TOTP (±1 step) and claims it:
// ErrBadCode (wrong, malformed, or no TOTP enrolled), ErrCodeUsed (right
// but already used, on any instance sharing Claims). Any other error is a
// store that failed (or ErrSealed): the code is then not accepted.
func (s *Service) VerifyTOTP(ctx context.Context, user, code string) error {
	c, err := s.Store.Load(ctx, user)
	if err != nil {
		return err
	}
	if c == nil || c.TOTP == nil {
		// The same work as for a wrong code, so that time does not tell
		// who has a TOTP enrolled.
		s.match(dummySecret, code)
		return ErrBadCode
	}
	raw, err := s.Sealer.Open(user, c.TOTP.Sealed)
	if err != nil {
		return err
	}
	counters := s.match(raw, code)
	if len(counters) == 0 {
		return ErrBadCode
	}
	_, err = s.claimAny(ctx, user, counters)
	return err
}

var dummySecret = make([]byte, totpSecretSize)

// match returns the steps (counters) around now whose code is code: the
// current one first, then the one before, then the one after. Usually one
// or none; two only when two steps' codes happen to be equal (one in a
// million), and then either may be claimed.
func (s *Service) match(secret []byte, code string) []uint64 {
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1 // "123 456", as some apps show it
		}
		return r
	}, code)
	if len(code) != totpDigits.Length() || strings.Trim(code, "0123456789") != "" {
		return nil
	}
	b32secret := b32.EncodeToString(secret)
	now := s.now().Unix()
	if now < totpPeriod*totpSkew {
		return nil // a clock before 1970: nothing is valid
	}
	cur := uint64(now / totpPeriod)
	var out []uint64
	for _, counter := range []uint64{cur, cur - 1, cur + 1} {
		want, err := hotp.GenerateCodeCustom(b32secret, counter, hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			out = append(out, counter)
		}
	}
	return out
}

// claimAny claims the first of counters not claimed yet and returns its
// key: ErrCodeUsed if every one was, the store's error if it failed (a
// claim that cannot be made is no pass).
func (s *Service) claimAny(ctx context.Context, user string, counters []uint64) (sessionstore.Key, error) {
	if s.Claims == nil {
		return sessionstore.Key{}, errors.New("mfa: no store to claim used codes in")
	}
	for _, counter := range counters {
		key := totpClaimKey(user, counter)
		ok, err := s.Claims.Claim(ctx, key, s.claimUntil(counter))
		if err != nil {
			return key, err
		}
		if ok {
			return key, nil
		}
	}
	return sessionstore.Key{}, ErrCodeUsed
}

// totpClaimKey names the claim of user's code of one step. It is of the
// step, not of the code: a step has one code per secret.
func totpClaimKey(user string, counter uint64) sessionstore.Key {
	return sessionstore.ClaimKey("mfa totp", user, strconv.FormatUint(counter, 10))
}

// claimUntil is when the claim of step counter may be forgotten: the end
// of step counter+2. The code is accepted until the end of step counter+1
// (skew 1); the step more is for instances whose clocks differ by up to
// one. The time is given to the claimer as a time on the process's clock
// (what the stores compare with), the same length from now as on the
// Service's clock (which tests set).
func (s *Service) claimUntil(counter uint64) time.Time {
	end := time.Unix(int64(counter+3)*totpPeriod, 0)
	return time.Now().Add(end.Sub(s.now()))
}

// decodeSecret reads a secret as NewTOTP's key.Secret() writes it, or as a
// person copies it (any case, spaces, padding).
func decodeSecret(secret string) ([]byte, error) {
	if len(secret) > 2*totpMaxSecret {
		return nil, ErrBadSecret
	}
	secret = strings.ToUpper(strings.TrimRight(strings.ReplaceAll(secret, " ", ""), "="))
	raw, err := b32.DecodeString(secret)
	if err != nil || len(raw) < totpMinSecret || len(raw) > totpMaxSecret {
		return nil, ErrBadSecret
	}
	return raw, nil
}
