package oidc

import (
	"go.uber.org/zap"
)

// Site is what the handler works out about one request and the package
// needs: where the handler's endpoints are as the browser sees them, the
// site's home, and the client's address.
type Site struct {
	// Endpoints is the path of the handler's endpoints as the browser
	// sees them (<mount><path_prefix>, such as /.session): the callback
	// is <Endpoints>/oidc/<name>/callback.
	Endpoints string
	// Home is the site's root under the mount ("/" without one).
	Home string
	// ClientIP is the client's address, as logs name it.
	ClientIP string
}

func (s Site) zapRemoteIP() zap.Field { return zap.String("remote_ip", s.ClientIP) }

// Problem is a login that did not work, for the user: the handler
// answers it with a page (Title, Message) or JSON ({"error": Message})
// with Status, and never sets a session.
type Problem struct {
	Status  int
	Title   string
	Message string
	// Provider is the provider's name, "" when there is no such provider.
	Provider string
	// Result is how the login counts in the metrics: success, refused,
	// failure or error; "" when it does not count.
	Result string
	// RetryAfter is the Retry-After header to send, or "".
	RetryAfter string
}

func (p *Problem) Error() string { return p.Title + ": " + p.Message }

// problem is a Problem of provider p.
func (p *Client) problem(result string, status int, title, msg string) *Problem {
	return &Problem{Status: status, Title: title, Message: msg, Provider: p.Name, Result: result}
}

// Helpers that other packages have too: kept here so that this package
// needs none of them.
