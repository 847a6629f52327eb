// The HTTP client the tests talk to Caddy with.

package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Client is a browser-like HTTP client with a cookie jar that does not
// follow redirects.
type Client struct {
	*http.Client
	t    testing.TB
	Base string
	// Allow5xx lets responses of 500 and above through; otherwise they
	// fail the test, as a 5xx is never an answer edgesession means to give
	// except 503 while its store is down.
	Allow5xx bool
}

// NewClient returns a client for the site at base.
func NewClient(t testing.TB, base string) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{
		t:    t,
		Base: base,
		Client: &http.Client{
			Jar:           jar,
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Response is a response with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// Echo decodes the upstream's echo; it fails the test if the response did
// not come from the upstream.
func (r *Response) Echo(t testing.TB) Echo {
	t.Helper()
	var e Echo
	if r.StatusCode != 200 || json.Unmarshal(r.Body, &e) != nil || e.Headers == nil {
		t.Fatalf("want the upstream's echo, got %d: %s", r.StatusCode, r.Body)
	}
	return e
}

// JSON decodes the body into a map.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("want JSON, got %d %q: %v", r.StatusCode, r.Body, err)
	}
	return m
}

// Do sends req and reads the whole response.
func (c *Client) Do(req *http.Request) *Response {
	c.t.Helper()
	resp, err := c.Client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	if resp.StatusCode >= 500 && !c.Allow5xx {
		c.t.Errorf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, body)
	}
	return &Response{Response: resp, Body: body}
}

// NewRequest makes a request to the site; headers are "Name: value"
// strings, sent with the name exactly as written.
func (c *Client) NewRequest(method, path string, body io.Reader, headers ...string) *http.Request {
	c.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, c.Base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			c.t.Fatalf("bad header %q", h)
		}
		req.Header[name] = append(req.Header[name], strings.TrimSpace(value))
	}
	return req
}

// Get sends a GET.
func (c *Client) Get(path string, headers ...string) *Response {
	c.t.Helper()
	return c.Do(c.NewRequest("GET", path, nil, headers...))
}

// Post sends a POST with a body of the given content type.
func (c *Client) Post(path, contentType, body string, headers ...string) *Response {
	c.t.Helper()
	return c.Do(c.NewRequest("POST", path, strings.NewReader(body), append(headers, "Content-Type: "+contentType)...))
}

// LoginJSON logs in with the JSON API.
func (c *Client) LoginJSON(user, password string, headers ...string) *Response {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	return c.Post("/.session/login", "application/json", string(b), headers...)
}

// MustLogin logs in and fails the test if that does not work.
func (c *Client) MustLogin(user, password string) {
	c.t.Helper()
	if r := c.LoginJSON(user, password); r.StatusCode != 200 {
		c.t.Fatalf("login as %s: %d %s", user, r.StatusCode, r.Body)
	}
}

// LoginForm logs in with the HTML form.
func (c *Client) LoginForm(user, password, redirect string, headers ...string) *Response {
	c.t.Helper()
	form := url.Values{"username": {user}, "password": {password}, "redirect": {redirect}}
	return c.Post("/.session/login", "application/x-www-form-urlencoded", form.Encode(), headers...)
}

// LogoutJSON logs out as a JSON client does (answered 204).
func (c *Client) LogoutJSON() *Response {
	c.t.Helper()
	return c.Post("/.session/logout", "application/json", "", "Accept: application/json")
}

// SessionCookie returns the session cookie's value in the jar, or "".
func (c *Client) SessionCookie() string {
	u, _ := url.Parse(c.Base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "caddy_session" {
			return ck.Value
		}
	}
	return ""
}

// SetSessionCookie puts value in the jar as the session cookie.
func (c *Client) SetSessionCookie(value string) {
	u, _ := url.Parse(c.Base)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "caddy_session", Value: value, Path: "/"}})
}

// Whoami returns the status of <prefix>/whoami and the user it names.
func (c *Client) Whoami() (int, string) {
	c.t.Helper()
	r := c.Get("/.session/whoami")
	if r.StatusCode != 200 {
		return r.StatusCode, ""
	}
	user, _ := r.JSON(c.t)["user"].(string)
	return r.StatusCode, user
}
