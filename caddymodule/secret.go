package caddymodule

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// minSecretBytes is the least a configured secret may have.
const minSecretBytes = 32

// secretStorageKey is where the generated secret is kept in Caddy's
// storage (the data directory by default).
const secretStorageKey = "edgesession/secret"

// loadSecrets returns the configured secrets, with placeholders replaced,
// or else the generated one from Caddy's storage, generating it on first
// start. Errors never show a secret.
func (h *Handler) loadSecrets(ctx caddy.Context) ([][]byte, error) {
	if len(h.Secrets) > 0 {
		repl := caddy.NewReplacer()
		var secrets [][]byte
		for i, s := range h.Secrets {
			v, err := repl.ReplaceOrErr(s, true, true)
			if err != nil {
				return nil, fmt.Errorf("secret #%d: %v", i+1, err)
			}
			v = strings.TrimSpace(v) // {file.*} usually ends with a newline
			if len(v) < minSecretBytes {
				return nil, fmt.Errorf("secret #%d is %d bytes long; it must be at least %d", i+1, len(v), minSecretBytes)
			}
			secrets = append(secrets, []byte(v))
		}
		return secrets, nil
	}

	storage := ctx.Storage()
	if err := storage.Lock(ctx, secretStorageKey); err != nil {
		return nil, fmt.Errorf("locking the generated session secret: %w", err)
	}
	defer storage.Unlock(ctx, secretStorageKey)
	b, err := storage.Load(ctx, secretStorageKey)
	if err == nil && len(b) >= minSecretBytes {
		return [][]byte{b}, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("loading the generated session secret: %w", err)
	}
	b = []byte(rand.Text() + rand.Text()) // 2×130 bits
	if err := storage.Store(ctx, secretStorageKey, b); err != nil {
		return nil, fmt.Errorf("storing the generated session secret: %w", err)
	}
	h.logger.Info("generated a session secret and stored it in Caddy's storage", zap.String("key", secretStorageKey))
	return [][]byte{b}, nil
}
