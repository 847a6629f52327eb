package endpoints

import (
	"net/http"

	"github.com/edgesession/edgesession/pages"
)

// The pages the handler fills in from its configuration and the request
// before the page set renders them.

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, page pages.Login) error {
	page.Action = s.endpointURL(r, "/login")
	page.Title = s.c.Title
	page.Providers = s.oidcButtons(r, page.Redirect)
	page.PasswordForm = len(page.Providers) == 0 || s.c.PasswordUsers
	if s.c.MFA != nil && s.c.PasswordUsers {
		page.Passkey = &pages.PasskeyLogin{URL: s.endpointURL(r, "/passkey/login"), Script: s.endpointURL(r, "/passkey/passkey.js")}
	}
	return s.c.Pages.Login(w, status, page)
}

func (s *Server) renderLogout(w http.ResponseWriter, r *http.Request, page pages.Logout) error {
	page.Action = s.endpointURL(r, "/logout")
	page.Title = s.c.Title
	return s.c.Pages.Logout(w, http.StatusOK, page, s.c.OIDC.LogoutFormAction())
}

func (s *Server) renderMessage(w http.ResponseWriter, status int, page pages.Message) error {
	page.Title = s.c.Title
	return s.c.Pages.Message(w, status, page)
}
