package pages

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
)

// IsNavigation reports whether r is a browser navigating to a page, which
// may be sent to the login page: a GET or HEAD that accepts HTML and is not
// a script's request. Prototype.js and jQuery accept text/html too, but say
// X-Requested-With; fetch() and XMLHttpRequest in today's browsers say
// Sec-Fetch-Mode cors, same-origin or no-cors. A script would only follow
// the redirect and get the login page's HTML where it wants data.
func IsNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && AcceptsHTML(r) && !fromScript(r)
}

// fromScript reports whether r was sent by a page's script rather than by
// the browser navigating.
func fromScript(r *http.Request) bool {
	if _, ok := r.Header["X-Requested-With"]; ok {
		return true
	}
	mode, ok := r.Header["Sec-Fetch-Mode"]
	return ok && (len(mode) != 1 || mode[0] != "navigate")
}

// WantsPage reports whether an answer that is not a success (a refused
// cross-origin form, a throttled login) is for a person to read: a browser
// that posted a form by navigating. API clients (Accept: application/json,
// a JSON body, a script, a client that does not accept HTML) get JSON.
func WantsPage(r *http.Request) bool {
	if !AcceptsHTML(r) || AcceptsJSON(r) || fromScript(r) {
		return false
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mediaType != "application/json"
}

// AcceptsHTML reports whether the client accepts HTML, judged by Accept.
func AcceptsHTML(r *http.Request) bool {
	for _, v := range r.Header["Accept"] {
		if strings.Contains(v, "text/html") {
			return true
		}
	}
	return false
}

// AcceptsJSON reports whether the client asked for JSON first.
func AcceptsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
