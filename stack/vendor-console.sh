#!/usr/bin/env bash
# Refreshes the console's browser libraries from npm, pinned (no CDN at run time: the files are
# committed under services/console/static/vendor/ and served by the console itself).
#   stack/vendor-console.sh           fetch the pinned versions below and rewrite the files
set -euo pipefail
PKGS=(htmx.org@2.0.11 htmx-ext-sse@2.2.4 uplot@1.6.32)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/services/console/static/vendor"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "${PKGS[@]}" >/dev/null)
for t in "$tmp"/*.tgz; do mkdir -p "${t%.tgz}"; tar xzf "$t" -C "${t%.tgz}"; done
cp "$tmp"/htmx.org-*/package/dist/htmx.min.js "$OUT/htmx.min.js"
cp "$tmp"/htmx-ext-sse-*/package/dist/sse.min.js "$OUT/htmx-ext-sse.min.js"
cp "$tmp"/uplot-*/package/dist/uPlot.iife.min.js "$OUT/uPlot.iife.min.js"
cp "$tmp"/uplot-*/package/dist/uPlot.min.css "$OUT/uPlot.min.css"
cp "$tmp"/uplot-*/package/LICENSE "$OUT/uPlot.LICENSE" 2>/dev/null || true
cp "$tmp"/htmx.org-*/package/LICENSE "$OUT/htmx.LICENSE" 2>/dev/null || true
{ printf '%s\n' "${PKGS[@]}"; (cd "$OUT" && sha256sum ./*.js ./*.css); } > "$OUT/VERSIONS"
echo "vendored: ${PKGS[*]} -> services/console/static/vendor/"
