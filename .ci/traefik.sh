#!/usr/bin/env bash
# Build Traefik v3 (the proxy of tests/proxy_traefik_test.go: ForwardAuth in
# front of edgesession's auth endpoint) from the Go module proxy, once per
# version, into a cache outside the repository; print the binary's path.
#
# `go install github.com/traefik/traefik/v3/cmd/traefik@v3.7.13` refuses the
# module's `replace` directives, and one of them points at a nested module
# the module zip does not carry (github.com/traefik/traefik/dynamic/ext =>
# ./pkg/config/dynamic/ext; the proxy does not serve that path either). That
# module is an extension point of empty structs, so: download the module,
# copy it to a writable temp dir, write the empty extension package where the
# replace points, and build cmd/traefik there. The web UI is not embedded
# (webui/static holds only a placeholder in the module zip); the tests do
# not use it.
#
# Idempotent: an existing binary that answers `version` is reused.
set -euo pipefail
version=${TRAEFIK_VERSION:-v3.7.13}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/edgesession/traefik-$version
bin=$cache/traefik
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
	echo "$bin"
	exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
dir=$(go mod download -json "github.com/traefik/traefik/v3@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { echo "traefik.sh: go mod download gave no Dir" >&2; exit 1; }
cp -R "$dir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
ext=pkg/config/dynamic/ext
if [ ! -f "$ext/go.mod" ]; then
	mkdir -p "$ext"
	printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24.0\n' >"$ext/go.mod"
	cat >"$ext/ext.go" <<'GO'
// Package ext holds Traefik's configuration extension points (empty in the
// open-source build).
package ext

// HTTP is a dynamic.HTTP extension.
type HTTP struct{}

// Router is a dynamic.Router extension.
type Router struct{}

// RouterIng is a RouterIng extension for ingress provider annotations.
type RouterIng struct{}

// ToRouter converts RouterIng to a Router.
func (r RouterIng) ToRouter() Router { return Router{} }
GO
fi
# The module proxy this was written against refuses a few module versions
# Traefik needs (403 "not available"): the Containous fork of go-http-auth
# (BasicAuth/DigestAuth middlewares) and the SDKs of 13 of lego's ACME DNS
# providers. Where a version is refused: go-http-auth from its upstream
# v0.4.0, and lego with those providers left out of its registry (asking
# for one is then "unrecognized DNS provider"). ForwardAuth is unchanged.
# The fork adds two functions Traefik calls, which the copy of v0.4.0
# gains here: CheckSecret (a password against a hash, as v0.4.0's
# BasicAuth.CheckAuth compares them) and DigestAuth.RequireAuthStale (as
# RequireAuth, without the stale=true hint).
if ! go mod download "github.com/containous/go-http-auth@$(go list -m -f '{{.Replace.Version}}' github.com/abbot/go-http-auth)" 2>/dev/null; then
	echo "traefik.sh: the Containous go-http-auth fork is not served: using github.com/abbot/go-http-auth@v0.4.0 with its two additions" >&2
	goauth_dir=$(go mod download -json github.com/abbot/go-http-auth@v0.4.0 |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp -R "$goauth_dir" "$work/goauth"
	chmod -R u+w "$work/goauth"
	[ -f "$work/goauth/go.mod" ] || printf 'module github.com/abbot/go-http-auth\n\ngo 1.18\n\nrequire (\n\tgolang.org/x/crypto v0.0.0-20170825220121-81e90905daef\n\tgolang.org/x/net v0.0.0-20170828231752-66aacef3dd8a\n)\n' >"$work/goauth/go.mod"
	cat >"$work/goauth/traefik_additions.go" <<'GO'
package auth

import (
	"net/http"
	"strings"
)

// CheckSecret reports whether password matches the hash secret.
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, cmp := range compareFuncs[1:] {
		if strings.HasPrefix(secret, cmp.prefix) {
			compare = cmp.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale asks for credentials again, as RequireAuth does.
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	a.RequireAuth(w, r)
}
GO
	go mod edit -replace "github.com/abbot/go-http-auth=$work/goauth"
fi
lego_version=$(go list -m -f '{{.Version}}' github.com/go-acme/lego/v5)
lego_dir=$(go mod download -json "github.com/go-acme/lego/v5@$lego_version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
dropped=()
for p in alidns aliesa azion dnsimple edgedns edgeone huaweicloud oraclecloud regfish sakuracloud tencentcloud ucloud yandexcloud; do
	if ! (cd "$lego_dir" && go list -deps "./providers/dns/$p" >/dev/null 2>&1); then
		dropped+=("$p")
	fi
done
if [ ${#dropped[@]} -gt 0 ]; then
	echo "traefik.sh: lego DNS providers whose modules are not served, left out: ${dropped[*]}" >&2
	cp -R "$lego_dir" "$work/lego"
	chmod -R u+w "$work/lego"
	gen=$work/lego/providers/dns/zz_gen_dns_providers.go
	for p in "${dropped[@]}"; do
		sed -i "\#\"github.com/go-acme/lego/v5/providers/dns/$p\"#d" "$gen"
		sed -i "s#return $p\.NewDNSProvider()#return nil, fmt.Errorf(\"DNS provider $p is not built in\")#" "$gen"
	done
	go mod edit -replace "github.com/go-acme/lego/v5=$work/lego"
fi
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
	-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$version" \
	-o "$work/traefik" ./cmd/traefik >&2
"$work/traefik" version >/dev/null
mv "$work/traefik" "$bin.tmp.$$"
mv "$bin.tmp.$$" "$bin"
echo "$bin"
