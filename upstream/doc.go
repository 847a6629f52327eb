// Package upstream owns what the upstream is told and what it may say
// back: the trusted header names (the prefix, the user headers, the
// headers mapped to the user or a data key) and their removal from every
// client request, header, Connection list and trailer; the identity
// headers forwarded for a session (its user, groups, source and data,
// given as a View); and the response side: the writers that apply the
// upstream's control headers through a Controller and strip every header
// with the prefix before the response goes out, the response trailers,
// and the connections the next handler hijacks.
//
// It must not know session stores, cookies or their crypto, or identity
// sources: what a control header changes is the caller's (Controller),
// the session's user is a View the caller fills, and a login name is
// checked by a func the caller passes. Caddy appears only where the
// writers wrap Caddy's response writer (caddyhttp.ResponseWriterWrapper).
package upstream
