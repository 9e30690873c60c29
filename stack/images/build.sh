#!/usr/bin/env bash
# Makes sure every image docker-compose.yml needs exists locally: uses it when present, pulls
# it when a registry serves it, and only otherwise builds an OFFLINE STAND-IN (Debian bookworm
# packages on a debootstrap root; see docs/compose.md). Stand-ins carry the label
# dev.safeguard.standin=true.
#   stack/images/build.sh                  all of them
#   stack/images/build.sh kafka zipkin     some (python node kafka postgres redis haproxy zipkin)
#   stack/images/build.sh --list           what is there, stand-in or not, and sizes
set -euo pipefail
# shellcheck source=stack/images/lib.sh
. "$(dirname "$0")/lib.sh"

ALL=(python node kafka postgres redis haproxy zipkin)
tag_of() {
  case "$1" in
    python) echo "$PYTHON_IMAGE" ;; node) echo "$NODE_IMAGE" ;; kafka) echo "$KAFKA_IMAGE" ;; postgres) echo "$POSTGRES_IMAGE" ;;
    redis) echo "$REDIS_IMAGE" ;; haproxy) echo "$HAPROXY_IMAGE" ;; zipkin) echo "$ZIPKIN_IMAGE" ;;
    *) idie "unknown image '$1' (one of: ${ALL[*]})" ;;
  esac
}

kafka_jars() {  # the native stack's jars (stack/kafka/pom.xml -> .stack/kafka/lib), fetched if missing
  local lib="$ROOT/.stack/kafka/lib" pom="$ROOT/stack/kafka/pom.xml" sum
  sum="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [ "$(cat "$lib/.pom.sha256" 2>/dev/null)" != "$sum" ]; then
    ensure_packages mvn=maven
    ilog "fetching the Kafka jars from Maven Central (stack/kafka/pom.xml) ..."
    rm -rf "$lib.tmp"; mkdir -p "$lib.tmp"
    mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DoutputDirectory="$lib.tmp" >&2 \
      || idie "mvn could not fetch the Kafka jars"
    echo "$sum" > "$lib.tmp/.pom.sha256"
    rm -rf "$lib"; mv "$lib.tmp" "$lib"
  fi
  local tools="$IMAGES_CACHE/kafka-tools" tpom="$IMAGES_SRC/kafka/pom.xml"
  sum="$(sha256sum "$tpom" | cut -d' ' -f1)"
  if [ "$(cat "$tools/.pom.sha256" 2>/dev/null)" != "$sum" ]; then
    ensure_packages mvn=maven
    ilog "fetching the Kafka tools jar (stack/images/kafka/pom.xml) ..."
    rm -rf "$tools"; mkdir -p "$tools"
    mvn -B -q -Dstyle.color=never -f "$tpom" dependency:copy-dependencies -DoutputDirectory="$tools" >&2 \
      || idie "mvn could not fetch the Kafka tools jar"
    echo "$sum" > "$tools/.pom.sha256"
  fi
}

build_kafka() {
  kafka_jars
  local ctx="$IMAGES_CACHE/kafka-context"
  rm -rf "$ctx"; mkdir -p "$ctx/libs"
  cp "$ROOT"/.stack/kafka/lib/*.jar "$IMAGES_CACHE"/kafka-tools/*.jar "$ctx/libs/"
  cp -r "$IMAGES_SRC/kafka/bin" "$IMAGES_SRC/kafka/docker" "$ctx/"
  CONTEXT="$ctx" "$IMAGES_SRC/build-one.sh" kafka "$1"
  rm -rf "$ctx"
}

build_zipkin() {  # the native stack's jar (stack/zipkin/pom.xml -> .stack/zipkin), fetched if missing
  local jar ctx="$IMAGES_CACHE/zipkin-context"
  ensure_packages mvn=maven
  jar="$("$ROOT/stack/zipkin/fetch.sh" "$ROOT/.stack/zipkin")" || idie "could not fetch the Zipkin server jar"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp -l "$jar" "$ctx/zipkin-server-exec.jar" 2>/dev/null || cp "$jar" "$ctx/zipkin-server-exec.jar"
  CONTEXT="$ctx" "$IMAGES_SRC/build-one.sh" zipkin "$1"
  rm -rf "$ctx"
}

ensure_image() {  # ensure_image <name>
  local name="$1" tag; tag="$(tag_of "$1")"
  if image_present "$tag"; then
    ilog "$tag present$(is_standin "$tag" && echo ' (stand-in)')"
  elif image_pullable "$tag"; then
    ilog "$tag pulled"
  else
    ilog "$tag is neither present nor pullable: building the offline stand-in"
    case "$name" in
      kafka)  build_kafka "$tag" ;;
      zipkin) build_zipkin "$tag" ;;
      *)      "$IMAGES_SRC/build-one.sh" "$name" "$tag" ;;
    esac
  fi
}

list() {
  local n tag
  printf '%-36s %-10s %s\n' IMAGE KIND SIZE
  for n in "${ALL[@]}"; do
    tag="$(tag_of "$n")"
    if image_present "$tag"; then
      printf '%-36s %-10s %s\n' "$tag" "$(is_standin "$tag" && echo stand-in || echo upstream)" "$(image_size "$tag")"
    else
      printf '%-36s %-10s %s\n' "$tag" missing -
    fi
  done
}

ensure_docker
if [ "${1:-}" = --list ]; then list; exit 0; fi
[ "$#" -gt 0 ] || set -- "${ALL[@]}"
t=$(now)
for n in "$@"; do ensure_image "$n"; done
ilog "images ready in $(elapsed "$t")s"
