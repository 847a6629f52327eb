package mfa

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Passkeys (WebAuthn credentials) of local users: registration, and login
// with one, alone (a discoverable credential names its user by the user
// handle) or as the second step after a password.
//
// The user handle is Credentials.Handle, 32 random bytes made at the first
// passkey, never the user name: a passkey on a shared authenticator tells
// nothing about whose it is. The vault maps it back to the user
// (handleName); that entry is written before any credential carries the
// handle and removed after the last passkey is gone, so that a handle
// found in a credential always leads to its user.

// passkeyUser is a user as go-webauthn sees them.
type passkeyUser struct {
	name string
	c    *Credentials
}

func (u *passkeyUser) WebAuthnID() []byte          { return u.c.Handle }
func (u *passkeyUser) WebAuthnName() string        { return u.name }
func (u *passkeyUser) WebAuthnDisplayName() string { return u.name }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential {
	creds := make([]webauthn.Credential, len(u.c.Passkeys))
	for i, p := range u.c.Passkeys {
		creds[i] = p.Credential
	}
	return creds
}

// Passkeys are the WebAuthn ceremonies of one relying party (a site, as
// one request sees it: its RP ID and origins), over a Store.
type Passkeys struct {
	store *Store
	w     *webauthn.WebAuthn
	now   func() time.Time
}

// Errors of the passkey ceremonies. Each is a refusal, not a failure of
// the store (those are returned as they are).
var (
	// ErrPasskeyRefused: the response does not prove what it must (wrong
	// challenge, origin, RP ID, signature; no user verification; an
	// unknown credential or one of another user).
	ErrPasskeyRefused = errors.New("mfa: passkey refused")
	// ErrSignCounter: the authenticator's signature counter went
	// backwards (or stood still) while it counts: the credential's key may
	// have been copied.
	ErrSignCounter = errors.New("passkey sign counter went backwards (cloned authenticator?)")
	// ErrHandleChanged: the user's handle changed between the start and
	// the end of a registration (another one ran meanwhile).
	ErrHandleChanged = errors.New("mfa: the user's passkeys changed meanwhile")
	// ErrNoPasskey: the user has no passkey of that ID.
	ErrNoPasskey = errors.New("mfa: no such passkey")
)

// ceremonyTimeout is what the browser is told to wait for the person.
const ceremonyTimeout = 5 * time.Minute

// NewPasskeys makes the ceremonies of the relying party rpID (a host name:
// the site's, or a parent domain of it), whose pages are at origins
// (scheme://host[:port]), named rpName to the person.
func NewPasskeys(store *Store, rpName, rpID string, origins []string) (*Passkeys, error) {
	w, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: rpName,
		RPOrigins:     origins,
		// No attestation: which make of authenticator it is does not
		// decide who may sign in, and asking only adds a prompt.
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTimeout, TimeoutUVD: ceremonyTimeout},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTimeout, TimeoutUVD: ceremonyTimeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mfa: passkeys of %q: %w", rpID, err)
	}
	return &Passkeys{store: store, w: w, now: time.Now}, nil
}

// BeginRegistration starts adding a passkey for user: the options for
// navigator.credentials.create, and the session data to keep (sealed, in
// the browser) until FinishRegistration. The passkey must be discoverable
// and verify the user (PIN, biometrics): it may be the whole login. The
// user's existing passkeys are excluded (one per authenticator).
func (p *Passkeys) BeginRegistration(ctx context.Context, user string) (*protocol.CredentialCreation, *webauthn.SessionData, error) {
	c, err := p.store.Load(ctx, user)
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		c = new(Credentials)
	}
	u := &passkeyUser{name: user, c: c}
	if len(c.Handle) == 0 {
		// A handle for this registration; it becomes the user's only
		// when the passkey is stored (FinishRegistration).
		u.c = &Credentials{Handle: make([]byte, 32)}
		rand.Read(u.c.Handle)
	}
	var exclude []protocol.CredentialDescriptor
	for _, pk := range c.Passkeys {
		exclude = append(exclude, pk.Credential.Descriptor())
	}
	return p.w.BeginRegistration(u, webauthn.WithExclusions(exclude),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
}

// FinishRegistration checks the browser's response (the JSON of the
// PublicKeyCredential) against session and stores the passkey as name.
func (p *Passkeys) FinishRegistration(ctx context.Context, user, name string, session webauthn.SessionData, response []byte) (*Passkey, error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPasskeyRefused, err)
	}
	handle := session.UserID
	if len(handle) != 32 {
		return nil, ErrPasskeyRefused
	}
	c, err := p.store.Load(ctx, user)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = new(Credentials)
	}
	if len(c.Handle) != 0 && !bytes.Equal(c.Handle, handle) {
		return nil, ErrHandleChanged
	}
	cred, err := p.w.CreateCredential(&passkeyUser{name: user, c: &Credentials{Handle: handle, Passkeys: c.Passkeys}}, session, parsed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPasskeyRefused, err)
	}
	if len(c.Handle) == 0 {
		// The index first: a credential that carries the handle must
		// always lead back to its user.
		if err := p.indexHandle(ctx, handle, user); err != nil {
			return nil, err
		}
	}
	pk := Passkey{Name: name, Created: p.now().UTC(), Credential: *cred}
	_, err = p.store.Update(ctx, user, func(c **Credentials) error {
		if *c == nil {
			*c = new(Credentials)
		}
		if len((*c).Handle) != 0 && !bytes.Equal((*c).Handle, handle) {
			return ErrHandleChanged
		}
		for _, old := range (*c).Passkeys {
			if bytes.Equal(old.Credential.ID, cred.ID) {
				return fmt.Errorf("%w: this passkey is already registered", ErrPasskeyRefused)
			}
		}
		(*c).Handle = handle
		(*c).Passkeys = append((*c).Passkeys, pk)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &pk, nil
}

// indexHandle maps handle to user in the vault.
func (p *Passkeys) indexHandle(ctx context.Context, handle []byte, user string) error {
	name := handleName(handle)
	old, err := p.store.Vault.VaultGet(ctx, name)
	if err != nil {
		return err
	}
	if old != nil {
		if string(old) == user {
			return nil
		}
		return ErrHandleChanged // 32 random bytes do not collide
	}
	ok, err := p.store.Vault.VaultSwap(ctx, name, nil, []byte(user))
	if err != nil {
		return err
	}
	if !ok {
		return ErrHandleChanged
	}
	return nil
}

// BeginLogin starts a login with a passkey: for user's passkeys (the
// second step after a password), or, with user "", for any discoverable
// passkey of this site (the whole login).
func (p *Passkeys) BeginLogin(ctx context.Context, user string) (*protocol.CredentialAssertion, *webauthn.SessionData, error) {
	uv := webauthn.WithUserVerification(protocol.VerificationRequired)
	if user == "" {
		return p.w.BeginDiscoverableLogin(uv)
	}
	c, err := p.store.Load(ctx, user)
	if err != nil {
		return nil, nil, err
	}
	if c == nil || len(c.Passkeys) == 0 {
		return nil, nil, ErrNoPasskey
	}
	return p.w.BeginLogin(&passkeyUser{name: user, c: c}, uv)
}

// FinishLogin checks the browser's response (the JSON of the
// PublicKeyCredential) against session: for the passkeys of user, or,
// with user "", of whoever the credential's user handle names. The
// credential must be one of that user's, the user verified, and its
// signature counter must have moved on (ErrSignCounter); its count and
// last use are then stored. It returns the user.
func (p *Passkeys) FinishLogin(ctx context.Context, user string, session webauthn.SessionData, response []byte) (string, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrPasskeyRefused, err)
	}
	var cred *webauthn.Credential
	if user == "" {
		var found webauthn.User
		found, cred, err = p.w.ValidatePasskeyLogin(func(_, handle []byte) (webauthn.User, error) {
			return p.userByHandle(ctx, handle)
		}, session, parsed)
		if err == nil {
			user = found.WebAuthnName()
		}
	} else {
		var c *Credentials
		if c, err = p.store.Load(ctx, user); err != nil {
			return "", err
		}
		if c == nil {
			return "", ErrNoPasskey
		}
		cred, err = p.w.ValidateLogin(&passkeyUser{name: user, c: c}, session, parsed)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: %v", ErrPasskeyRefused, err)
	}
	if !parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		return "", fmt.Errorf("%w: the user was not verified", ErrPasskeyRefused)
	}
	count := parsed.Response.AuthenticatorData.Counter
	_, err = p.store.Update(ctx, user, func(c **Credentials) error {
		if *c == nil {
			return ErrNoPasskey
		}
		for i := range (*c).Passkeys {
			pk := &(*c).Passkeys[i]
			if !bytes.Equal(pk.Credential.ID, cred.ID) {
				continue
			}
			// Checked again against what is stored now: another
			// instance may have taken a later count meanwhile.
			stored := pk.Credential.Authenticator.SignCount
			if (count != 0 || stored != 0) && count <= stored {
				return ErrSignCounter
			}
			pk.Credential.Authenticator.SignCount = count
			pk.Credential.Authenticator.CloneWarning = false
			pk.Credential.Flags = cred.Flags
			pk.LastUsed = p.now().UTC()
			return nil
		}
		return ErrNoPasskey
	})
	if err != nil {
		return user, err // the user, for the log line
	}
	return user, nil
}

// userByHandle is the user a user handle names, with their credentials;
// the handle must still be theirs.
func (p *Passkeys) userByHandle(ctx context.Context, handle []byte) (webauthn.User, error) {
	if len(handle) != 32 {
		return nil, ErrNoPasskey
	}
	user, err := p.store.Vault.VaultGet(ctx, handleName(handle))
	if err != nil {
		return nil, err
	}
	if user == nil {
		return nil, ErrNoPasskey
	}
	c, err := p.store.Load(ctx, string(user))
	if err != nil {
		return nil, err
	}
	if c == nil || !bytes.Equal(c.Handle, handle) {
		return nil, ErrNoPasskey
	}
	return &passkeyUser{name: string(user), c: c}, nil
}

// RemovePasskey removes user's passkey of credential ID id; with the last
// one, the user's handle goes, and its index after it; with the last
// factor, the recovery codes.
func (s *Store) RemovePasskey(ctx context.Context, user string, id []byte) error {
	var handle []byte
	_, err := s.Update(ctx, user, func(c **Credentials) error {
		handle = nil
		if *c == nil {
			return ErrNoPasskey
		}
		for i, pk := range (*c).Passkeys {
			if bytes.Equal(pk.Credential.ID, id) {
				(*c).Passkeys = append((*c).Passkeys[:i:i], (*c).Passkeys[i+1:]...)
				if len((*c).Passkeys) == 0 {
					handle, (*c).Handle = (*c).Handle, nil
				}
				if !(*c).Enrolled() {
					// Recovery codes are a way back to a factor, and
					// there is none left (as RemoveTOTP).
					(*c).Recovery = nil
				}
				return nil
			}
		}
		return ErrNoPasskey
	})
	if err != nil || handle == nil {
		return err
	}
	return s.unindexHandle(ctx, handle, user)
}

// unindexHandle removes the index entry of handle, if it names user.
func (s *Store) unindexHandle(ctx context.Context, handle []byte, user string) error {
	name := handleName(handle)
	old, err := s.Vault.VaultGet(ctx, name)
	if err != nil || string(old) != user {
		return err
	}
	_, err = s.Vault.VaultSwap(ctx, name, old, nil)
	return err
}
