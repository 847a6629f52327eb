package caddymodule

import (
	"bytes"
	"crypto/rand"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

//go:embed templates/*.html
var builtinTemplates embed.FS

// loadTemplates parses the built-in pages, replacing the login page with
// the file at loginTemplate if one is given.
func loadTemplates(loginTemplate string) (*template.Template, error) {
	t, err := template.ParseFS(builtinTemplates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	if loginTemplate != "" {
		custom, err := template.ParseFiles(loginTemplate)
		if err != nil {
			return nil, fmt.Errorf("login_template: %w", err)
		}
		if _, err := t.AddParseTree("login.html", custom.Tree); err != nil {
			return nil, fmt.Errorf("login_template: %w", err)
		}
	}
	return t, nil
}

// pageCSP allows nothing from outside and only the page's own nonce-tagged
// style; forms may only post to this origin; no one may frame the page.
const pageCSP = "default-src 'none'; style-src 'nonce-%s'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (h *Handler) renderLogin(w http.ResponseWriter, status int, page loginPage) error {
	page.Action = h.PathPrefix + "/login"
	page.Nonce = rand.Text()
	page.Providers = h.oidcButtons(page.Redirect)
	page.PasswordForm = len(page.Providers) == 0 || len(h.Users) > 0 || h.UsersFile != ""
	return h.render(w, status, "login.html", page.Nonce, page)
}

func (h *Handler) renderLogout(w http.ResponseWriter, page logoutPage) error {
	page.Action = h.PathPrefix + "/logout"
	page.Nonce = rand.Text()
	return h.renderCSP(w, http.StatusOK, "logout.html", page.Nonce, h.logoutFormAction(), page)
}

func (h *Handler) render(w http.ResponseWriter, status int, name, nonce string, data any) error {
	return h.renderCSP(w, status, name, nonce, "", data)
}

// renderCSP is render with more sources for form-action than 'self'.
func (h *Handler) renderCSP(w http.ResponseWriter, status int, name, nonce, formAction string, data any) error {
	var buf bytes.Buffer
	if err := h.templates.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	csp := fmt.Sprintf(pageCSP, nonce)
	if formAction != "" {
		csp = strings.Replace(csp, "form-action 'self'", "form-action 'self' "+formAction, 1)
	}
	hdr.Set("Content-Security-Policy", csp)
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}
