// Package throttle limits password guessing (SPEC §3): it counts failed
// logins per user and client address, and per client address over all
// users, and refuses an attempt while either count is at its limit.
//
// It owns the counts and where they live: in a table of the process,
// bounded and shared by every throttle of the process so that a config
// reload keeps a lockout, or in Redis, where the instances that share a
// store share one budget. Attempts in flight are counted in the process
// either way. Without Redis a throttle cannot fail; with Redis it fails
// closed: an attempt whose counts cannot be read is not let through.
//
// It must not know Caddy, HTTP, cookies or sessions. The caller computes
// the client's address, names the scope whose users' failures count
// together (a handler's realm or credentials), checks the password, and
// decides what to answer when an attempt is refused.
package throttle
