package mfa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sealer seals TOTP secrets and hashes recovery codes with keys derived from
// the handler's secrets.
//
// Each configured secret yields an AES-256-GCM key (HKDF-SHA256, info
// "edgesession mfa totp" and the realm) and an HMAC-SHA256 key (info
// "edgesession mfa recovery" and the realm), as the cookie codec derives
// its own: the first secret seals and hashes, every one opens and
// matches, so that rotating the handler's secrets (a new one first, the
// old one kept after it) leaves enrolled authenticators and recovery
// codes working. A copy of the vault alone yields no TOTP secret and no
// recovery code.
type Sealer struct {
	aeads    []cipher.AEAD
	recovery [][]byte
}

// sealVersion is the first byte of every sealed secret: a later format
// can tell its values from these.
const sealVersion = 1

// ErrSealed is returned when a sealed TOTP secret opens with none of the
// configured secrets: it was sealed with a secret no longer configured
// (or under another realm, or for another user). The user must enrol
// again (or an operator reset them); it is not a wrong code.
var ErrSealed = errors.New("mfa: the TOTP secret does not open with any configured secret (rotated away, another realm or another user)")

// NewSealer derives the keys of every secret for realm (no realm: keys of
// their own too, the same as with realms never configured).
func NewSealer(secrets [][]byte, realm string) (*Sealer, error) {
	info := ""
	if realm != "" {
		info = " realm " + realm
	}
	s := &Sealer{}
	for _, secret := range secrets {
		if len(secret) == 0 {
			continue
		}
		key, err := hkdf.Key(sha256.New, secret, nil, "edgesession mfa totp"+info, 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		rk, err := hkdf.Key(sha256.New, secret, nil, "edgesession mfa recovery"+info, 32)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
		s.recovery = append(s.recovery, rk)
	}
	if len(s.aeads) == 0 {
		return nil, fmt.Errorf("mfa: no secret to seal second factors with")
	}
	return s, nil
}

// Seal encrypts a TOTP secret of user with the first secret's key. The
// user name is the additional data: a sealed secret copied into another
// user's credentials does not open there.
func (s *Sealer) Seal(user string, secret []byte) ([]byte, error) {
	aead := s.aeads[0]
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(secret)+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], secret, []byte(user)), nil
}

// Open decrypts what Seal sealed for user, trying every secret's key:
// ErrSealed if none opens it.
func (s *Sealer) Open(user string, sealed []byte) ([]byte, error) {
	n := s.aeads[0].NonceSize() // GCM's standard nonce, the same for every key
	if len(sealed) < 1+n+s.aeads[0].Overhead() || sealed[0] != sealVersion {
		return nil, ErrSealed
	}
	for _, aead := range s.aeads {
		if plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(user)); err == nil {
			return plain, nil
		}
	}
	return nil, ErrSealed
}

// RecoveryHash is what is kept of a recovery code (normalised: see
// normaliseRecovery), keyed with the first secret.
func (s *Sealer) RecoveryHash(user, code string) []byte {
	return recoveryHash(s.recovery[0], user, code)
}

// recoveryHashes are code's hashes under every secret's key, the first
// first: a code hashed before a rotation still matches after it.
func (s *Sealer) recoveryHashes(user, code string) [][]byte {
	hs := make([][]byte, len(s.recovery))
	for i, k := range s.recovery {
		hs[i] = recoveryHash(k, user, code)
	}
	return hs
}

// recoveryHash binds the code to the user too, so that one user's hash
// copied to another does not match the same code there.
func recoveryHash(key []byte, user, code string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}
