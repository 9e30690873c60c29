#!/usr/bin/env bash
# Builds the Jaeger v2 binary from the Go module proxy into .stack/images/jaeger/ (cached:
# a rebuild happens only when the binary for $JAEGER_MODULE_VERSION is missing).
# `go install` refuses the module (its go.mod has replace directives), so: a throwaway module,
# `go get -tool`, then `go build` of the tool package.
set -euo pipefail
# shellcheck source=stack/images/lib.sh
. "$(dirname "$0")/../lib.sh"
out="$IMAGES_CACHE/jaeger/jaeger-$JAEGER_MODULE_VERSION"
[ -x "$out" ] && [ -s "$out.sampling-strategies.json" ] && { echo "$out"; exit 0; }
command -v go >/dev/null || ensure_packages go=golang-go
pkg=github.com/jaegertracing/jaeger/cmd/jaeger
mod="$IMAGES_CACHE/jaeger/module"
mkdir -p "$mod"
t=$(now)
ilog "building Jaeger $JAEGER_MODULE_VERSION from the Go module proxy (slow on 2 cores: ~10 min) ..."
(
  cd "$mod"
  [ -f go.mod ] || go mod init safeguard.local/jaeger-standin >/dev/null 2>&1
  go get -tool "$pkg@$JAEGER_MODULE_VERSION"
  [ -x "$out" ] || CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out.tmp" "$pkg"
  cp "$(go list -m -f '{{.Dir}}' github.com/jaegertracing/jaeger)/cmd/jaeger/sampling-strategies.json" \
    "$out.sampling-strategies.json"
) >"$IMAGES_CACHE/jaeger/build.log" 2>&1 || { tail -n 30 "$IMAGES_CACHE/jaeger/build.log" >&2; idie "Jaeger build failed"; }
[ -x "$out" ] || mv "$out.tmp" "$out"
ilog "Jaeger binary built in $(elapsed "$t")s: $out"
echo "$out"
