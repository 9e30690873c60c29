#!/usr/bin/env bash
# Builds ONE stand-in image from stack/images/<dir>/Dockerfile, FROM the debootstrap base:
#   stack/images/build-one.sh <dir> <tag> [extra docker build args...]
set -euo pipefail
# shellcheck source=stack/images/lib.sh
. "$(dirname "$0")/lib.sh"
dir="$1" tag="$2"; shift 2
"$IMAGES_SRC/base.sh"
ctx="$IMAGES_SRC/$dir"
[ -z "${CONTEXT:-}" ] || ctx="$CONTEXT"
t=$(now)
ilog "building stand-in $tag (stack/images/$dir) ..."
log="$IMAGES_CACHE/build-$dir.log"
mkdir -p "$IMAGES_CACHE"
DOCKER_BUILDKIT=0 docker build --force-rm --network host --build-arg "BASE=$BASE_IMAGE" \
  --label "$STANDIN_LABEL=true" -f "$IMAGES_SRC/$dir/Dockerfile" -t "$tag" "$@" "$ctx" >"$log" 2>&1 \
  || { tail -n 40 "$log" >&2; idie "building $tag failed (log: $log)"; }
ilog "$tag built in $(elapsed "$t")s ($(image_size "$tag"))"
