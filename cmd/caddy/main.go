// Command caddy is Caddy with edgesession built in, so that
// `go run ./cmd/caddy` works without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/edgesession/edgesession/caddymodule"
)

func main() {
	caddycmd.Main()
}
