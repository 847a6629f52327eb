package caddymodule

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/edgesession/edgesession/internal/files"
	"go.uber.org/zap"
)

// minSecretBytes is the least a configured secret may have.
const minSecretBytes = 32

// maxSecretFile bounds a {file.*} secret, as Caddy's own placeholder does.
const maxSecretFile = 1 << 20

// checkSecret checks the n-th configured secret s as far as it can without
// the environment or the file system: that `caddy adapt` passes on a
// machine (a CI job) that has no production secrets. A literal secret is
// measured; a placeholder must be a well-formed {env.NAME} or {file.PATH}.
// What a placeholder stands for is read and measured at provision
// (resolveSecret), by `caddy validate` and `caddy run`.
func checkSecret(n int, s string) error {
	keys, literal, err := secretPlaceholders(s)
	if err != nil {
		return fmt.Errorf("secret #%d: %w", n, err)
	}
	if len(keys) == 0 && len(strings.TrimSpace(literal)) < minSecretBytes {
		return fmt.Errorf("secret #%d is %d bytes long; it must be at least %d", n, len(strings.TrimSpace(literal)), minSecretBytes)
	}
	return nil
}

// secretPlaceholders returns the placeholders of s (without braces) and
// what s says without them, or an error for a placeholder that is not a
// well-formed {env.NAME} or {file.PATH}, or one left unclosed. The error
// names a placeholder only if it is one of those two kinds: a literal
// secret may contain braces.
func secretPlaceholders(s string) (keys []string, literal string, err error) {
	literal, err = caddy.NewEmptyReplacer().ReplaceFunc(s, func(key string, _ any) (any, error) {
		if name, ok := strings.CutPrefix(key, "env."); ok {
			if !validEnvName(name) {
				return nil, fmt.Errorf("{%s} does not name an environment variable (letters, digits and '_', not starting with a digit)", key)
			}
		} else if path, ok := strings.CutPrefix(key, "file."); ok {
			if path == "" {
				return nil, fmt.Errorf("{file.} names no file")
			}
		} else {
			return nil, fmt.Errorf("a placeholder other than {env.*} and {file.*} (write a literal brace as \\{)")
		}
		keys = append(keys, key)
		return "", nil
	})
	if err != nil {
		return nil, "", err
	}
	for _, open := range []string{"{env.", "{file."} {
		for rest := s; ; {
			i := strings.Index(rest, open)
			if i < 0 {
				break
			}
			if (i == 0 || rest[i-1] != '\\') && !strings.Contains(rest[i:], "}") {
				return nil, "", fmt.Errorf("a placeholder %s... is not closed", open)
			}
			rest = rest[i+1:]
		}
	}
	return keys, literal, nil
}

// validEnvName reports whether name is a portable environment variable
// name, as a shell would set it.
func validEnvName(name string) bool {
	for i, c := range name {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return name != ""
}

// resolveSecret replaces the {env.*} and {file.*} placeholders of the
// n-th configured secret s and checks its length: at provision, so by
// `caddy validate` and `caddy run`. Errors name the directive, the
// variable or the file, never a value.
func resolveSecret(n int, s string) ([]byte, error) {
	keys, _, err := secretPlaceholders(s)
	if err != nil {
		return nil, fmt.Errorf("secret #%d: %w", n, err)
	}
	v, err := caddy.NewEmptyReplacer().ReplaceFunc(s, func(key string, _ any) (any, error) {
		if name, ok := strings.CutPrefix(key, "env."); ok {
			v := os.Getenv(name)
			if v == "" {
				return nil, fmt.Errorf("secret #%d: environment variable %s is unset or empty", n, name)
			}
			return v, nil
		}
		path, _ := strings.CutPrefix(key, "file.")
		return readSecretFile(n, path)
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
	b, err := files.ReadAtMost(path, maxSecretFile)
	if err != nil {
		return "", fmt.Errorf("secret #%d: %w", n, err)
	}
	return string(b), nil
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
