# shellcheck shell=bash
# Common settings and helpers for the native stack scripts (sourced, not executed).
#
# Everything the stack writes lives under $STACK (.stack/ at the repo root).
# Ports can be overridden from the environment; defaults follow shared/ARCHITECTURE.md.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STACK="$ROOT/.stack"
STACK_SRC="$ROOT/stack"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
LOGS="$STACK/logs"
RUN="$STACK/run"                       # sockets and pid files
# unix socket paths are limited to ~107 bytes: fall back to a short per-checkout dir in /tmp
if [ "${#RUN}" -gt 70 ]; then
  RUN="/tmp/safeguard-run-$(printf '%s' "$STACK" | md5sum | cut -c1-12)"
fi
SUPERVISOR_CONF="$STACK/supervisord.conf"
SUPERVISOR_PID="$RUN/supervisord.pid"
SUPERVISOR_SOCK="$RUN/supervisor.sock"
ENV_FILE="$STACK/env"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

# Ports (all on 127.0.0.1). Precedence: environment > .stack/ports (what the running stack
# was started with; up.sh sets STACK_READ_PORTS=0 to ignore it) > defaults.
if [ "${STACK_READ_PORTS:-1}" = 1 ] && [ -f "$STACK/ports" ]; then
  while IFS='=' read -r _k _v; do
    case "$_k" in [A-Z]*_PORT | [A-Z]*_PORT_[0-9]*) [ -n "${!_k:-}" ] || printf -v "$_k" '%s' "$_v" ;; esac
  done < "$STACK/ports"
  unset _k _v
fi
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
FRONT_PORT="${FRONT_PORT:-3000}"
DEMO_PORT="${DEMO_PORT:-8100}"
DEMO_BLUE_PORT="${DEMO_BLUE_PORT:-8101}"
DEMO_GREEN_PORT="${DEMO_GREEN_PORT:-8102}"
FLAGS_PORT="${FLAGS_PORT:-8001}"
FLAGS_PORT_2="${FLAGS_PORT_2:-8011}"        # the second flags instance (programs.conf `flags-2`)
HEALTH_PORT="${HEALTH_PORT:-8002}"
SLA_PORT="${SLA_PORT:-8003}"
RECOVERY_PORT="${RECOVERY_PORT:-8004}"
NOTIFIER_PORT="${NOTIFIER_PORT:-8005}"
FLAGS_SYNC_PORT="${FLAGS_SYNC_PORT:-8015}"  # flagd sync gRPC: HAProxy, to either flags instance
FLAGS_SYNC_PORT_1="${FLAGS_SYNC_PORT_1:-8016}"  # flags instance 1's own sync port
FLAGS_SYNC_PORT_2="${FLAGS_SYNC_PORT_2:-8017}"  # flags-2's
NODE_DEMO_PORT="${NODE_DEMO_PORT:-8200}"    # HAProxy front of the Node demo (examples/demo-node)
NODE_BLUE_PORT="${NODE_BLUE_PORT:-8201}"
NODE_GREEN_PORT="${NODE_GREEN_PORT:-8202}"
INTAKE_PORT="${INTAKE_PORT:-8006}"          # the intake: OTLP metrics in, page-load beacons
CONSOLE_PORT="${CONSOLE_PORT:-8007}"        # the web console (HAProxy routes :3000/console to it)
OTLP_HTTP_PORT="${OTLP_HTTP_PORT:-4318}"    # HAProxy frontend `otlp`: /v1/metrics -> intake (any OTel SDK)
ZIPKIN_PORT="${ZIPKIN_PORT:-9411}"          # Zipkin: the trace view (/zipkin/) and span intake (/api/v2/spans)

# Kafka JVM: C1-only JIT starts ~2x faster on a busy 2-core machine; for broker throughput
# benchmarks use e.g. KAFKA_JVM_OPTS="-Xms512m -Xmx1g -XX:+UseG1GC" make up
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1}"
KAFKA_LOG_LEVEL="${KAFKA_LOG_LEVEL:-warn}"
# Zipkin (in-memory storage, the oldest traces dropped past ZIPKIN_MAX_SPANS): a small heap, C1-only
# JIT and the serial collector start it in ~5 s; it starts in the background at the end of `make up`
ZIPKIN_JVM_OPTS="${ZIPKIN_JVM_OPTS:--Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError}"
ZIPKIN_MAX_SPANS="${ZIPKIN_MAX_SPANS:-20000}"   # 100000 ran a 256 MB heap out of memory under make test (Zipkin then hung)

# Database created for Safeguard (same names as POSTGRES_* of the postgres image in compose).
# No default password: up.sh makes one on first start (.stack/secrets/postgres-password).
POSTGRES_USER="${POSTGRES_USER:-safeguard}"
POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-}"
POSTGRES_DB="${POSTGRES_DB:-safeguard}"

# Credentials made once by up.sh (mode 600, never printed): Kafka SCRAM passwords (one principal
# per service, `app` for protected apps, `admin` the broker's super user; stack/run.sh maps a
# program to its principal), Postgres password.
SECRETS="$STACK/secrets"
KAFKA_PRINCIPALS="admin flags health sla recovery notifier app intake"
KAFKA_SASL_MECHANISM="${KAFKA_SASL_MECHANISM:-SCRAM-SHA-512}"
secret() {  # secret <name>: prints .stack/secrets/<name>, made (24 random bytes, url-safe base64) on first use
  local f="$SECRETS/$1"
  [ -s "$f" ] || { mkdir -p "$SECRETS" && chmod 700 "$SECRETS" &&
                   (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > "$f.tmp" && mv "$f.tmp" "$f"); }
  cat "$f"
}

# Marker put in the environment of every process supervisord starts: it is how
# down.sh / the port check recognise "ours" (exactly what `make up` started).
OWNER_MARK="SAFEGUARD_STACK_OWNER=$STACK"

# Postgres must not run as root: use the `postgres` account when we are root.
if [ "$(id -u)" = 0 ]; then PG_OS_USER="${PG_OS_USER:-postgres}"; else PG_OS_USER="$(id -un)"; fi

log()  { printf '\033[1m[stack]\033[0m %s\n' "$*"; }
warn() { printf '\033[33m[stack] WARNING:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[31m[stack] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

as_pg() {  # run a command as the postgres OS user
  if [ "$(id -u)" = 0 ] && [ "$PG_OS_USER" != root ]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

# --- programs: the ONE list of Safeguard programs (stack/programs.conf) ---------------
# Each non-comment line: <name> <PORT_VAR> <health-path> <command...>
# Prints "name port_var health_path command..." lines, comments stripped.
programs() {
  sed -e 's/#.*$//' -e '/^[[:space:]]*$/d' "$STACK_SRC/programs.conf"
}
program_names() { programs | awk '{print $1}'; }
port_of() { local v="$1"; printf '%s' "${!v}"; }

all_ports() {
  echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT $POSTGRES_PORT $REDIS_PORT $FRONT_PORT $DEMO_PORT $FLAGS_SYNC_PORT $FLAGS_SYNC_PORT_1 $FLAGS_SYNC_PORT_2 $NODE_DEMO_PORT $OTLP_HTTP_PORT $ZIPKIN_PORT"
  local name pvar rest
  while read -r name pvar rest; do port_of "$pvar"; echo; done < <(programs)
}

# --- supervisord ------------------------------------------------------------------------
supervisor_pid() {  # prints the pid of OUR supervisord if it is alive
  [ -s "$SUPERVISOR_PID" ] || return 1
  local pid; pid="$(cat "$SUPERVISOR_PID")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q -- "$SUPERVISOR_CONF" || return 1
  echo "$pid"
}
ctl() { "$VENV/bin/supervisorctl" -c "$SUPERVISOR_CONF" "$@"; }

# pids of processes carrying our owner mark (started by our supervisord, or orphans of it)
our_pids() {
  local p
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    [ "$p" = "$$" ] && continue
    if tr '\0' '\n' 2>/dev/null < "/proc/$p/environ" | grep -qxF "$OWNER_MARK"; then echo "$p"; fi
  done
}

# --- templates: replace @KEY@ with the value of the shell variable KEY ------------------
render() {  # render <template> <output> ; returns 0 if output changed, 1 if identical
  local tpl="$1" out="$2" content key
  content="$(cat "$tpl")"
  for key in $(grep -o '@[A-Z_][A-Z0-9_]*@' "$tpl" | sort -u | tr -d '@'); do
    [ -n "${!key+x}" ] || die "template $tpl uses @$key@ but \$$key is not set"
    content="${content//@$key@/${!key}}"
  done
  if [ -f "$out" ] && [ "$(cat "$out")" = "$content" ]; then return 1; fi
  printf '%s\n' "$content" > "$out.tmp" && mv "$out.tmp" "$out"
  return 0
}

# Names of all port variables (written to .stack/ports by up.sh).
port_vars() {
  echo KAFKA_PORT KAFKA_CONTROLLER_PORT POSTGRES_PORT REDIS_PORT FRONT_PORT DEMO_PORT DEMO_BLUE_PORT DEMO_GREEN_PORT FLAGS_SYNC_PORT FLAGS_SYNC_PORT_1 FLAGS_SYNC_PORT_2 NODE_DEMO_PORT OTLP_HTTP_PORT ZIPKIN_PORT
  programs | awk '{print $2}'
}
