package caddymodule

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// minSecretBytes is the least a configured secret may have.
const minSecretBytes = 32

// maxSecretFile bounds a {file.*} secret, as Caddy's own placeholder does.
const maxSecretFile = 1 << 20

// resolveSecret replaces the {env.*} and {file.*} placeholders of the
// n-th configured secret s and checks its length. It runs both while the
// Caddyfile is parsed and at provision. Errors name the variable or the
// file, never a value: other placeholders are refused without naming them,
// since a literal secret may contain braces.
func resolveSecret(n int, s string) ([]byte, error) {
	var keys []string
	v, err := caddy.NewEmptyReplacer().ReplaceFunc(s, func(key string, _ any) (any, error) {
		keys = append(keys, key)
		if name, ok := strings.CutPrefix(key, "env."); ok {
			v := os.Getenv(name)
			if v == "" {
				return nil, fmt.Errorf("secret #%d: environment variable %s is unset or empty", n, name)
			}
			return v, nil
		}
		if path, ok := strings.CutPrefix(key, "file."); ok {
			return readSecretFile(n, path)
		}
		return nil, fmt.Errorf("secret #%d has a placeholder other than {env.*} and {file.*} (write a literal brace as \\{)", n)
	})
	if err != nil {
		return nil, err
	}
	v = strings.TrimSpace(v) // a {file.*} usually ends with a newline
	if len(v) < minSecretBytes {
		what := fmt.Sprintf("secret #%d", n)
		if len(keys) == 1 && s == "{"+keys[0]+"}" {
			what += " (" + s + ")"
		}
		return nil, fmt.Errorf("%s is %d bytes long; it must be at least %d", what, len(v), minSecretBytes)
	}
	return []byte(v), nil
}

// readSecretFile reads the file of a {file.*} secret: a regular file, not
// a device or pipe that could block or never end.
func readSecretFile(n int, path string) (string, error) {
	if fi, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("secret #%d: %w", n, err)
	} else if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("secret #%d: %s is not a regular file", n, path)
	}
	b, err := readFileAtMost(path, maxSecretFile)
	if err != nil {
		return "", fmt.Errorf("secret #%d: %w", n, err)
	}
	return string(b), nil
}

// readFileAtMost reads a file of at most limit bytes.
func readFileAtMost(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s is larger than %d KiB", path, limit>>10)
	}
	return b, err
}

// secretStorageKey is where the generated secret is kept in Caddy's
// storage (the data directory by default).
const secretStorageKey = "edgesession/secret"

// loadSecrets returns the configured secrets, with placeholders replaced,
// or else the generated one from Caddy's storage, generating it on first
// start. Errors never show a secret.
func (h *Handler) loadSecrets(ctx caddy.Context) ([][]byte, error) {
	if len(h.Secrets) > 0 {
		var secrets [][]byte
		for i, s := range h.Secrets {
			v, err := resolveSecret(i+1, s)
			if err != nil {
				return nil, err
			}
			secrets = append(secrets, v)
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
