// Package pages owns what the handler answers itself: the built-in pages
// (templates embedded in the binary, the login page replaceable by a
// login_template file), rendering them with the security headers and a
// Content-Security-Policy whose nonce is new for every page, the data each
// page is given, JSON answers, and reading what kind of answer a client
// wants (a browser navigating, a person posting a form, or a script or
// API client that wants JSON).
//
// It must not know sessions, stores, identity sources, cookies or Caddy:
// the caller fills in each page's data as plain values (URLs already
// made for the mount, the user's name, the providers' buttons) and
// decides which page to answer with.
//
// The page data types' field names are what templates read; those of
// Login are documented for login_template files (docs/apps.md) and must
// not change.
package pages
