// The login and consent app Hydra sends the browser to.

package tests

import (
	"html/template"
	"net/http"
	"net/url"
)

// serveApp is the login, consent and logout app.
func (h *Hydra) serveApp(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/login" && r.Method == http.MethodGet:
		h.showLogin(w, r)
	case r.URL.Path == "/login" && r.Method == http.MethodPost:
		h.postLogin(w, r)
	case r.URL.Path == "/consent":
		h.consent(w, r)
	case r.URL.Path == "/logout":
		h.logout(w, r)
	default:
		http.Error(w, "hydra error page: "+r.URL.RawQuery, http.StatusBadRequest)
	}
}

// loginForm is the login app's form.
var loginForm = template.Must(template.New("login").Parse(`<!doctype html>
<form method="post" action="/login"><input type="hidden" name="challenge" value="{{.}}">
<input name="username"><input name="password" type="password"><button>Sign in</button></form>`))

// showLogin answers Hydra's login request: at once when Hydra already
// knows the user (skip: its session), else with the form.
func (h *Hydra) showLogin(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("login_challenge")
	var req struct {
		Skip    bool   `json:"skip"`
		Subject string `json:"subject"`
	}
	if !h.appCall(w, "GET", "/admin/oauth2/auth/requests/login?login_challenge="+url.QueryEscape(challenge), nil, &req) {
		return
	}
	if req.Skip {
		h.acceptLogin(w, r, challenge, req.Subject)
		return
	}
	h.mu.Lock()
	h.forms++
	h.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	loginForm.Execute(w, challenge)
}

// postLogin checks the user name (the preferred_username) and password.
func (h *Hydra) postLogin(w http.ResponseWriter, r *http.Request) {
	challenge, name, password := r.PostFormValue("challenge"), r.PostFormValue("username"), r.PostFormValue("password")
	for sub, u := range hydraUsers {
		// A user without a preferred_username signs in with her email.
		login := u.claims["preferred_username"]
		if login == nil {
			login = u.claims["email"]
		}
		if login == name && u.password == password {
			h.acceptLogin(w, r, challenge, sub)
			return
		}
	}
	http.Error(w, "wrong user name or password", http.StatusUnauthorized)
}

func (h *Hydra) acceptLogin(w http.ResponseWriter, r *http.Request, challenge, subject string) {
	var next struct {
		RedirectTo string `json:"redirect_to"`
	}
	if h.appCall(w, "PUT", "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(challenge),
		map[string]any{"subject": subject, "remember": true, "remember_for": 3600}, &next) {
		http.Redirect(w, r, next.RedirectTo, http.StatusFound)
	}
}

// consent grants what the client asked for, and puts the user's claims
// into the ID token.
func (h *Hydra) consent(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("consent_challenge")
	var req struct {
		Subject        string   `json:"subject"`
		Scopes         []string `json:"requested_scope"`
		Audience       []string `json:"requested_access_token_audience"`
		LoginSessionID string   `json:"login_session_id"`
	}
	if !h.appCall(w, "GET", "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(challenge), nil, &req) {
		return
	}
	u, ok := hydraUsers[req.Subject]
	if !ok {
		http.Error(w, "unknown subject", http.StatusForbidden)
		return
	}
	h.mu.Lock()
	h.sids[req.Subject] = req.LoginSessionID
	h.mu.Unlock()
	var next struct {
		RedirectTo string `json:"redirect_to"`
	}
	if h.appCall(w, "PUT", "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(challenge), map[string]any{
		"grant_scope":                 req.Scopes,
		"grant_access_token_audience": req.Audience,
		"session":                     map[string]any{"id_token": u.claims},
	}, &next) {
		http.Redirect(w, r, next.RedirectTo, http.StatusFound)
	}
}

// logout accepts every logout request (RP-initiated ones come here).
func (h *Hydra) logout(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("logout_challenge")
	var next struct {
		RedirectTo string `json:"redirect_to"`
	}
	if !h.appCall(w, "PUT", "/admin/oauth2/auth/requests/logout/accept?logout_challenge="+url.QueryEscape(challenge), nil, &next) {
		return
	}
	h.mu.Lock()
	h.logouts++
	h.mu.Unlock()
	http.Redirect(w, r, next.RedirectTo, http.StatusFound)
}
