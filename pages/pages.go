package pages

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

// A Set is the parsed pages, ready to render. It is safe for concurrent
// use.
type Set struct {
	t *template.Template
}

// Load parses the built-in pages, replacing the login page with the file
// at loginTemplate if one is given.
func Load(loginTemplate string) (*Set, error) {
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
	return &Set{t: t}, nil
}

// Login answers with the login page.
func (s *Set) Login(w http.ResponseWriter, status int, page Login) error {
	page.Nonce = rand.Text()
	return s.render(w, status, "login.html", page.Nonce, "", page)
}

// Logout answers with the logout confirmation page. formAction is what
// the page's CSP form-action allows besides 'self' (origins, separated by
// spaces), or "".
func (s *Set) Logout(w http.ResponseWriter, status int, page Logout, formAction string) error {
	page.Nonce = rand.Text()
	return s.render(w, status, "logout.html", page.Nonce, formAction, page)
}

// Message answers with a page that tells a person why their form was not
// accepted.
func (s *Set) Message(w http.ResponseWriter, status int, page Message) error {
	page.Nonce = rand.Text()
	return s.render(w, status, "message.html", page.Nonce, "", page)
}

// Forbidden answers with the page for a signed-in user whom the rules do
// not let in.
func (s *Set) Forbidden(w http.ResponseWriter, status int, page Forbidden) error {
	page.Nonce = rand.Text()
	return s.render(w, status, "forbidden.html", page.Nonce, "", page)
}

// Sessions answers with the user's list of their sessions.
func (s *Set) Sessions(w http.ResponseWriter, status int, page Sessions) error {
	page.Nonce = rand.Text()
	return s.render(w, status, "sessions.html", page.Nonce, "", page)
}

// OIDC answers with the page of a provider login: why it did not work,
// or, with Continue, a page that goes on at once.
func (s *Set) OIDC(w http.ResponseWriter, status int, page OIDC) error {
	page.Nonce = rand.Text()
	return s.render(w, status, "oidc.html", page.Nonce, "", page)
}

// MFA answers with the second step's page.
func (s *Set) MFA(w http.ResponseWriter, status int, page MFA) error {
	page.Nonce = rand.Text()
	return s.render(w, status, "mfa.html", page.Nonce, "", page)
}

// MFATOTP answers with the TOTP enrolment page.
func (s *Set) MFATOTP(w http.ResponseWriter, status int, page MFATOTP) error {
	page.Nonce = rand.Text()
	return s.render(w, status, "mfa_totp.html", page.Nonce, "", page)
}

// MFACodes answers with new recovery codes.
func (s *Set) MFACodes(w http.ResponseWriter, status int, page MFACodes) error {
	page.Nonce = rand.Text()
	return s.render(w, status, "mfa_codes.html", page.Nonce, "", page)
}

// ValidTitle accepts a site name that reads well in a page title:
// printable UTF-8 text of at most 200 bytes.
func ValidTitle(title string) error {
	if len(title) > 200 || !utf8.ValidString(title) || strings.ContainsFunc(title, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("title %q: want printable text of at most 200 bytes", title)
	}
	return nil
}

// pageCSP allows nothing from outside and only the page's own nonce-tagged
// style and scripts (the passkey script), which may only talk to this
// origin; forms may only post to this origin; no one may frame the page.
const pageCSP = "default-src 'none'; style-src 'nonce-%[1]s'; script-src 'nonce-%[1]s'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// render executes the template name with data and answers with it, its CSP
// allowing the style tagged with nonce, and form-action formAction besides
// 'self' when it is not "".
func (s *Set) render(w http.ResponseWriter, status int, name, nonce, formAction string, data any) error {
	var buf bytes.Buffer
	if err := s.t.ExecuteTemplate(&buf, name, data); err != nil {
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
