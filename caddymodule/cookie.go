package caddymodule

import (
	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/session"
)

// Cookie is the session cookie's name and attributes.
type Cookie = cookie.Config

// AppCookie is one of the app's own cookies, expired when a session ends
// (see session.AppCookie).
type AppCookie = session.AppCookie
