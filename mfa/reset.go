package mfa

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/edgesession/edgesession/sessionstore"
)

// resetAttempts bounds how often Reset reads again when the credentials
// keep changing under it (the user enrolling meanwhile on another
// instance).
const resetAttempts = 16

// Reset removes every second factor of user from v: the credentials kept
// under "mfa/user/<user>" and, if they held a WebAuthn user handle, the
// handle's entry "mfa/handle/<hex>" that maps a passkey back to the user.
// It reports whether there was anything to remove. It is what an operator
// does for a user who lost their authenticator (the admin API's
// POST /session/mfa/reset); the user's sessions are not touched.
//
// Credentials that cannot be read (not JSON) are removed all the same:
// a reset is how to get out of that state. Each value is removed by
// compare-and-swap against what was just read, so a change made meanwhile
// on another instance (a passkey enrolled) is read again and removed too,
// and nothing another instance wrote after Reset returned is lost.
func Reset(ctx context.Context, v sessionstore.Vault, user string) (removed bool, err error) {
	var handle []byte
	for attempt := 0; ; attempt++ {
		if attempt == resetAttempts {
			return removed, ErrConflict
		}
		raw, err := v.VaultGet(ctx, vaultName(user))
		if err != nil {
			return false, err
		}
		if raw == nil {
			break
		}
		var c Credentials
		if json.Unmarshal(raw, &c) == nil && len(c.Handle) > 0 {
			handle = c.Handle
		}
		ok, err := v.VaultSwap(ctx, vaultName(user), raw, nil)
		if err != nil {
			return false, err
		}
		if ok {
			removed = true
			break
		}
	}
	if handle == nil {
		return removed, nil
	}
	for range resetAttempts {
		raw, err := v.VaultGet(ctx, handleName(handle))
		if err != nil || raw == nil {
			return removed, err
		}
		ok, err := v.VaultSwap(ctx, handleName(handle), raw, nil)
		if err != nil || ok {
			return true, err
		}
	}
	return removed, errors.Join(ErrConflict, errors.New("mfa: the passkey handle's entry kept changing"))
}
