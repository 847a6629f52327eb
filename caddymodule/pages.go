package caddymodule

import (
	"bytes"
	"crypto/rand"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
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

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, page loginPage) error {
	page.Action = h.endpointURL(r, "/login")
	page.Title = h.Title
	page.Nonce = rand.Text()
	page.Providers = h.oidcButtons(r, page.Redirect)
	page.PasswordForm = len(page.Providers) == 0 || len(h.Users) > 0 || h.UsersFile != ""
	return h.render(w, status, "login.html", page.Nonce, page)
}

func (h *Handler) renderLogout(w http.ResponseWriter, r *http.Request, page logoutPage) error {
	page.Action = h.endpointURL(r, "/logout")
	page.Title = h.Title
	page.Nonce = rand.Text()
	return h.renderCSP(w, http.StatusOK, "logout.html", page.Nonce, h.logoutFormAction(), page)
}

// messagePage is a page that tells a person why their form was not
// accepted, in the style of the login page, with a link to go on.
type messagePage struct {
	Heading  string
	Text     string
	Link     string // a local URL the handler made
	LinkText string
	Title    string // the site's name, or ""
	Nonce    string
}

func (h *Handler) renderMessage(w http.ResponseWriter, status int, page messagePage) error {
	page.Title = h.Title
	page.Nonce = rand.Text()
	return h.render(w, status, "message.html", page.Nonce, page)
}

// validTitle accepts a site name that reads well in a page title: printable
// UTF-8 text of at most 200 bytes.
func validTitle(title string) error {
	if len(title) > 200 || !utf8.ValidString(title) || strings.ContainsFunc(title, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("title %q: want printable text of at most 200 bytes", title)
	}
	return nil
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
