package mfa

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
)

// Recovery codes: RecoveryCodes of recoveryLength characters from
// Crockford's base32 alphabet (no I, L, O or U: nothing that reads as
// another), 50 bits each, shown as two groups of five. Typing is forgiven:
// any case, '-' and spaces anywhere, and O, I, L read as 0, 1, 1.
const (
	RecoveryCodes    = 10
	recoveryLength   = 10
	recoveryAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// NewRecoveryCodes replaces user's recovery codes with RecoveryCodes new
// ones and returns them, as xxxxx-xxxxx: they are shown once, only their
// hashes are kept. The codes that were there are no longer valid.
func (s *Service) NewRecoveryCodes(ctx context.Context, user string) ([]string, error) {
	if user == "" {
		return nil, errors.New("mfa: recovery codes for no user")
	}
	codes := make([]string, 0, RecoveryCodes)
	hashes := make([]Recovery, 0, RecoveryCodes)
	buf := make([]byte, recoveryLength)
	for len(codes) < RecoveryCodes {
		if _, err := rand.Read(buf); err != nil {
			return nil, err
		}
		for i, b := range buf {
			buf[i] = recoveryAlphabet[b&31] // 256 is a multiple of 32: uniform
		}
		code := string(buf)
		if slices.Contains(codes, code) {
			continue // distinct, so that each counts once
		}
		codes = append(codes, code)
		hashes = append(hashes, Recovery{Hash: s.Sealer.RecoveryHash(user, code)})
	}
	if _, err := s.Store.Update(ctx, user, func(c **Credentials) error {
		if *c == nil {
			*c = new(Credentials)
		}
		(*c).Recovery = hashes
		return nil
	}); err != nil {
		return nil, err
	}
	for i, code := range codes {
		codes[i] = strings.ToLower(code[:5] + "-" + code[5:])
	}
	return codes, nil
}

// UseRecoveryCode removes a matching code of user's (accepts any case, with
// or without '-', spaces): ErrBadCode if none matches (wrong, used already,
// or none kept). The removal is a compare-and-swap in the store: two
// instances given one code at once, exactly one succeeds.
func (s *Service) UseRecoveryCode(ctx context.Context, user, code string) error {
	norm, ok := normaliseRecovery(code)
	if !ok {
		return ErrBadCode
	}
	hashes := s.Sealer.recoveryHashes(user, norm)
	_, err := s.Store.Update(ctx, user, func(c **Credentials) error {
		if *c == nil {
			return ErrBadCode
		}
		for i, r := range (*c).Recovery {
			for _, h := range hashes {
				if hmac.Equal(r.Hash, h) {
					(*c).Recovery = slices.Delete((*c).Recovery, i, i+1)
					return nil
				}
			}
		}
		return ErrBadCode
	})
	return err
}

// normaliseRecovery returns code as it was made (upper case, no
// separators), or false if it cannot be one.
func normaliseRecovery(code string) (string, bool) {
	if len(code) > 4*recoveryLength {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch r {
		case '-', ' ', '\t':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if r > 0x7f || !strings.ContainsRune(recoveryAlphabet, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != recoveryLength {
		return "", false
	}
	return b.String(), true
}
