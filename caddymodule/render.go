package caddymodule

import (
	"net/http"

	"github.com/edgesession/edgesession/pages"
)

// The pages the handler fills in from its configuration and the request
// before the page set renders them.

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, page pages.Login) error {
	page.Action = h.endpointURL(r, "/login")
	page.Title = h.Title
	page.Providers = h.oidcButtons(r, page.Redirect)
	page.PasswordForm = len(page.Providers) == 0 || len(h.Users) > 0 || h.UsersFile != ""
	return h.pages.Login(w, status, page)
}

func (h *Handler) renderLogout(w http.ResponseWriter, r *http.Request, page pages.Logout) error {
	page.Action = h.endpointURL(r, "/logout")
	page.Title = h.Title
	return h.pages.Logout(w, http.StatusOK, page, h.logoutFormAction())
}

func (h *Handler) renderMessage(w http.ResponseWriter, status int, page pages.Message) error {
	page.Title = h.Title
	return h.pages.Message(w, status, page)
}
