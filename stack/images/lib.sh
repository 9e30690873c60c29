# shellcheck shell=bash
# Helpers for the offline stand-in images and compose-check (sourced, not executed).
#
# Stand-ins are built ONLY for images that are neither present locally nor pullable: on a
# machine that can reach Docker Hub the real images are used and nothing here is built.
# Everything cached (the Kafka tools jars, build contexts and logs) lives in .stack/images/.

IMAGES_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd "$IMAGES_SRC/../.." && pwd -P)"
IMAGES_CACHE="$ROOT/.stack/images"
STANDIN_LABEL="dev.safeguard.standin"

# The images docker-compose.yml uses (the tags compose references, exactly) and the
# base our Dockerfile builds FROM. Override any of them from the environment.
BASE_IMAGE="${BASE_IMAGE:-safeguard-standin/debian:bookworm}"
PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.11-slim-bookworm}"
KAFKA_IMAGE="${KAFKA_IMAGE:-apache/kafka:4.1.1}"
POSTGRES_IMAGE="${POSTGRES_IMAGE:-postgres:15}"
REDIS_IMAGE="${REDIS_IMAGE:-redis:7.0}"
HAPROXY_IMAGE="${HAPROXY_IMAGE:-haproxy:2.6}"
NODE_IMAGE="${NODE_IMAGE:-node:20-bookworm-slim}"   # the Node demo's base (examples/demo-node/Dockerfile)
ZIPKIN_VERSION="${ZIPKIN_VERSION:-3.5.1}"           # = io.zipkin:zipkin-server's in stack/zipkin/pom.xml
ZIPKIN_IMAGE="${ZIPKIN_IMAGE:-openzipkin/zipkin:$ZIPKIN_VERSION}"
KAFKA_VERSION=4.1.1

# Debian mirror for debootstrap: the one the host's apt uses (falls back to deb.debian.org).
DEBIAN_MIRROR="${DEBIAN_MIRROR:-}"

ilog()  { printf '\033[1m[images]\033[0m %s\n' "$*" >&2; }
iwarn() { printf '\033[33m[images] WARNING:\033[0m %s\n' "$*" >&2; }
idie()  { printf '\033[31m[images] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo -n "$@"
  else idie "need root for: $*"
  fi
}

# --- host tools ---------------------------------------------------------------------------
ensure_packages() {  # ensure_packages <command>=<package> ... : apt-get install what is missing
  local pkgs=() spec
  for spec in "$@"; do command -v "${spec%%=*}" >/dev/null || pkgs+=("${spec#*=}"); done
  [ "${#pkgs[@]}" -gt 0 ] || return 0
  ilog "installing with apt: ${pkgs[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
    || idie "apt-get install ${pkgs[*]} failed"
}

DOCKERD_PIDFILE="$IMAGES_CACHE/dockerd.pid"
DOCKERD_LOG="$IMAGES_CACHE/dockerd.log"

docker_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# Starts dockerd when no daemon answers. Records the pid in $DOCKERD_PIDFILE (only then),
# so stop_docker_if_ours can leave the machine as it was found.
ensure_docker() {
  ensure_packages dockerd=docker.io  # the client alone (docker) may be there without a daemon
  docker_up && return 0
  command -v dockerd >/dev/null || idie "dockerd not found (apt-get install docker.io)"
  mkdir -p "$IMAGES_CACHE"
  ilog "no Docker daemon answers: starting dockerd (log: $DOCKERD_LOG)"
  as_root sh -c 'nohup dockerd >"$1" 2>&1 & echo $! >"$2"' sh "$DOCKERD_LOG" "$DOCKERD_PIDFILE"
  local i
  for i in $(seq 60); do docker_up && { ilog "dockerd is up (pid $(cat "$DOCKERD_PIDFILE"))"; return 0; }; sleep 0.5; done
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  idie "dockerd did not come up in 30 s"
}

stop_docker_if_ours() {
  [ -s "$DOCKERD_PIDFILE" ] || return 0
  local pid; pid="$(cat "$DOCKERD_PIDFILE")"
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q dockerd; then
    ilog "stopping the dockerd we started (pid $pid)"
    as_root kill "$pid" || true
    local i; for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$DOCKERD_PIDFILE"
}

# compose command: the `docker compose` plugin when present, else docker-compose (1.29 on Debian)
compose_cmd() {
  if docker compose version >/dev/null 2>&1; then echo "docker compose"
  else ensure_packages docker-compose=docker-compose; echo docker-compose
  fi
}

# --- images ----------------------------------------------------------------------------
image_present() { docker image inspect "$1" >/dev/null 2>&1; }
image_pullable() {  # tries once, quietly; a machine without Docker Hub fails fast (DNS)
  [ "${SAFEGUARD_NO_PULL:-0}" = 1 ] && return 1
  timeout "${PULL_TIMEOUT:-300}" docker pull -q "$1" >/dev/null 2>&1
}
is_standin() { [ "$(docker image inspect -f "{{index .Config.Labels \"$STANDIN_LABEL\"}}" "$1" 2>/dev/null)" = true ]; }
image_size() { docker image inspect -f '{{.Size}}' "$1" 2>/dev/null | awk '{ printf "%.0f MB", $1 / 1e6 }'; }
