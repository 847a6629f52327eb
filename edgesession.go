// Package edgesession plugs edgesession's Caddy modules in by the module
// path, so that xcaddy can build Caddy with
// --with github.com/edgesession/edgesession. The code lives in
// caddymodule (the Caddy glue) and sessionstore (the stores).
package edgesession

import (
	// Registers http.handlers.session and its store modules.
	_ "github.com/edgesession/edgesession/caddymodule"
)
