package caddymodule

import (
	"fmt"

	"github.com/edgesession/edgesession/upstream"
)

// Header names an app already trusts (SPEC §12): Handler.Headers forwards
// the user or a session data key under such a name. Package upstream
// checks, strips and forwards them; here they are only configuration.

// checkHeaderNames checks the prefix, the user headers and the mapped
// headers together: every name valid and not reserved, no mapped header
// under the prefix (the prefix is the handler's own), no name given twice
// in any spelling, every source a user or a valid data key.
func checkHeaderNames(h *Handler) error {
	prefix := h.HeaderPrefix
	if prefix == "" {
		prefix = DefaultHeaderPrefix
	}
	if !upstream.ValidHeaderName(prefix) {
		return fmt.Errorf("header_prefix %q: not a valid header name prefix", prefix)
	}
	return upstream.CheckNames(prefix, h.UserHeaders, h.Headers)
}
