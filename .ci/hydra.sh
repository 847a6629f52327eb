#!/usr/bin/env bash
# Build Ory Hydra (the certified OpenID provider the interop test in
# tests/hydra_test.go runs against) from the Go module proxy, once per
# version, into a cache outside the repository; print the binary's path.
#
# `go install github.com/ory/hydra/v2@v2.3.0` refuses the module's `replace`
# directives, so: download the module, copy it to a writable temp dir, drop
# the replace of hydra-client-go/v2 (it points at ./internal/httpclient, a
# nested module the module zip does not carry; the proxy's v2.2.1 that go.mod
# requires serves instead), keep the replace of gobuffalo/pop (a module
# version, which a main module may use), and build with -tags sqlite (cgo).
#
# Idempotent: an existing binary that answers `version` is reused.
set -euo pipefail
version=${HYDRA_VERSION:-v2.3.0}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/edgesession/hydra-$version
bin=$cache/hydra
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
	echo "$bin"
	exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
dir=$(go mod download -json "github.com/ory/hydra/v2@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { echo "hydra.sh: go mod download gave no Dir" >&2; exit 1; }
cp -R "$dir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
go mod edit -dropreplace github.com/ory/hydra-client-go/v2
# go.sum lacks the proxy's hydra-client-go: let the build add what it needs.
CGO_ENABLED=1 GOFLAGS=-mod=mod go build -tags sqlite -trimpath \
	-ldflags "-X github.com/ory/hydra/v2/driver/config.Version=$version" \
	-o "$work/hydra" . >&2
"$work/hydra" version >/dev/null
mv "$work/hydra" "$bin.tmp.$$"
mv "$bin.tmp.$$" "$bin"
echo "$bin"
