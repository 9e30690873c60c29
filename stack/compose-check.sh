#!/usr/bin/env bash
# `make compose-check`: proves docker-compose.yml on this machine, offline if need be.
#   1. Docker: installs docker.io / docker-compose / debootstrap when missing, starts dockerd
#      when none answers (and stops it again at the end if it was ours).
#   2. Images: stack/images/build.sh (present > pulled > offline stand-in), then our two images
#      (safeguard:local from Dockerfile, safeguard-node:local from examples/demo-node/Dockerfile).
#   3. `up -d` as project "safeguard-check", waits until every service is healthy (topics: exited 0).
#   4. Through the front door: the runbook's Step 1 curl verbatim, GET /api/health, an OFREP
#      evaluation of `gamification` (with a traceparent of ours), that trace in Zipkin's API
#      (/api/v2/trace/<id>) and Zipkin's Lens UI page (/zipkin/) served. Then Kafka's login and
#      ACLs: a TriggerFired forged with the demo app's credentials is refused by the broker; one
#      published as admin makes recovery run `disable_new_features` through the flags service
#      (succeeded in /api/recovery/actions, `gamification` off again through :3000); a memory_high on
#      demo-green makes recovery restart that container through the mounted Docker socket (Docker
#      executor: new StartedAt / PID, demo-blue untouched). Blue/green: `safeguard deploy --version v2` onto
#      green (the Docker API restarts it) under a client loop, `safeguard rollback` back to blue
#      and schema 0001, no failed request. The Node demo (:NODE_DEMO_PORT): gamification off by Step 1,
#      on by the flag API, off again, streamed over flagd sync; its OTLP metrics and a page-load beacon
#      counted by GET /api/sla/demo-node. And no generated credential in any container log.
#   5. `down -v` (always), then a PASS/FAIL table, timings and image sizes.
# Ports: when the native stack (or anything) holds the default ports, every published port is
# moved by COMPOSE_PORT_OFFSET (default 10000: front door 13000, Kafka 19092 ...). Set
# COMPOSE_PORT_OFFSET=0 to insist on the defaults. KEEP=1 leaves the stack up for debugging.
set -euo pipefail
# shellcheck source=stack/images/lib.sh
. "$(dirname "$0")/images/lib.sh"
cd "$ROOT"

PROJECT="${COMPOSE_PROJECT:-safeguard-check}"
WAIT_S="${COMPOSE_WAIT:-420}"
T0=$(now)
results=()
pass() { results+=("PASS  $1"); printf '\033[32mPASS\033[0m  %s\n' "$1"; }
fail() { results+=("FAIL  $1"); printf '\033[31mFAIL\033[0m  %s\n' "$1"; }

# ------------------------------------------------------------------ docker and tools
ensure_packages curl=curl jq=jq pg_dump=postgresql-client   # pg_dump/psql: check 6's deploy (backup, rehearse)
ensure_docker
COMPOSE="$(compose_cmd)"
ilog "compose: $COMPOSE ($($COMPOSE version --short 2>/dev/null || true))"

# ------------------------------------------------------------------ host ports
declare -A DEFAULT_PORTS=(
  [FRONT_PORT]=3000 [DEMO_PORT]=8100 [FLAGS_PORT]=8001 [HEALTH_PORT]=8002 [SLA_PORT]=8003
  [RECOVERY_PORT]=8004 [NOTIFIER_PORT]=8005 [FLAGS_SYNC_PORT]=8015 [KAFKA_PORT]=9092 [POSTGRES_PORT]=5432 [REDIS_PORT]=6379
  [ZIPKIN_PORT]=9411 [OTLP_HTTP_PORT]=4318
  [DEMO_BLUE_PORT]=8101 [DEMO_GREEN_PORT]=8102 [HAPROXY_ADMIN_PORT]=9999 [INTAKE_PORT]=8006 [CONSOLE_PORT]=8007
  [NODE_DEMO_PORT]=8200 [NODE_BLUE_PORT]=8201 [NODE_GREEN_PORT]=8202
)
port_busy() {  # a listener, or any socket (e.g. an outgoing connection) holding 127.0.0.1:<port>
  ! python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()' "$1" 2>/dev/null
}
all_free() {  # all_free <offset>: every port not set explicitly is free at default + offset
  local v p
  for v in "${!DEFAULT_PORTS[@]}"; do
    p="${!v:-$((DEFAULT_PORTS[$v] + $1))}"
    ! port_busy "$p" || return 1
  done
}
offset="${COMPOSE_PORT_OFFSET:-}"
if [ -z "$offset" ]; then
  for offset in 0 10000 20000 11000 21000 12000 22000 13000 14000 none; do all_free "$offset" 2>/dev/null && break; done
  [ "$offset" != none ] || idie "no free set of host ports (tried offsets 0, 10000 .. 22000): set COMPOSE_PORT_OFFSET"
  [ "$offset" = 0 ] || ilog "default ports are in use (native stack?): publishing on default port + $offset"
fi
for v in "${!DEFAULT_PORTS[@]}"; do
  [ -n "${!v:-}" ] || export "$v=$((DEFAULT_PORTS[$v] + offset))"
  ! port_busy "${!v}" || idie "host port ${!v} ($v) is in use: set COMPOSE_PORT_OFFSET or $v"
done
FRONT="http://localhost:$FRONT_PORT"
ZIPKIN="http://127.0.0.1:$ZIPKIN_PORT"

# ------------------------------------------------------------------ images
t=$(now)
"$IMAGES_SRC/build.sh"
T_STANDINS="$(elapsed "$t")"
t=$(now)
SAFEGUARD_IMAGE="${SAFEGUARD_IMAGE:-safeguard:local}"
ilog "building $SAFEGUARD_IMAGE (Dockerfile) ..."
mkdir -p "$IMAGES_CACHE"
DOCKER_BUILDKIT=0 docker build --force-rm --network host -f "${DOCKERFILE:-Dockerfile}" -t "$SAFEGUARD_IMAGE" . >"$IMAGES_CACHE/build-safeguard.log" 2>&1 \
  || { tail -n 40 "$IMAGES_CACHE/build-safeguard.log" >&2; idie "docker build of $SAFEGUARD_IMAGE failed"; }
T_IMAGE="$(elapsed "$t")"
ilog "$SAFEGUARD_IMAGE ready in ${T_IMAGE}s ($(image_size "$SAFEGUARD_IMAGE"))"
t=$(now)
SAFEGUARD_NODE_IMAGE="${SAFEGUARD_NODE_IMAGE:-safeguard-node:local}"
export SAFEGUARD_NODE_IMAGE
ilog "building $SAFEGUARD_NODE_IMAGE (examples/demo-node/Dockerfile) ..."
DOCKER_BUILDKIT=0 docker build --force-rm --network host --build-arg "NODE_IMAGE=$NODE_IMAGE" -f examples/demo-node/Dockerfile \
  -t "$SAFEGUARD_NODE_IMAGE" . >"$IMAGES_CACHE/build-safeguard-node.log" 2>&1 \
  || { tail -n 40 "$IMAGES_CACHE/build-safeguard-node.log" >&2; idie "docker build of $SAFEGUARD_NODE_IMAGE failed"; }
T_NODE_IMAGE="$(elapsed "$t")"
ilog "$SAFEGUARD_NODE_IMAGE ready in ${T_NODE_IMAGE}s ($(image_size "$SAFEGUARD_NODE_IMAGE"))"

# ------------------------------------------------------------------ up
export HEALTH_INTERVAL_SECONDS="${HEALTH_INTERVAL_SECONDS:-5}"
dc() { $COMPOSE -p "$PROJECT" -f "${COMPOSE_FILE_PATH:-docker-compose.yml}" --project-directory "$ROOT" "$@"; }
teardown() {
  local rc=$?
  if [ "${KEEP:-0}" = 1 ]; then
    ilog "KEEP=1: leaving project $PROJECT up (stop it: $COMPOSE -p $PROJECT down -v)"
  else
    ilog "down -v"
    dc down -v --remove-orphans >/dev/null 2>&1 || iwarn "down -v failed"
  fi
  [ "${KEEP_DOCKERD:-0}" = 1 ] || stop_docker_if_ours
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

dc down -v --remove-orphans >/dev/null 2>&1 || true   # leftovers of an interrupted run
# the colours' release files (`safeguard deploy`, check 7): empty, so both start on v1
export SAFEGUARD_DEPLOY_DIR="$ROOT/.stack/compose-check-deploy"
# recovery's Docker executor (check 5b) talks to this daemon's socket, as a member of its group
export DOCKER_SOCKET="${DOCKER_SOCKET:-/var/run/docker.sock}"
DOCKER_GID="$(stat -c %g "$DOCKER_SOCKET")" && export DOCKER_GID
rm -rf "$SAFEGUARD_DEPLOY_DIR" && mkdir -p "$SAFEGUARD_DEPLOY_DIR" && chmod 755 "$SAFEGUARD_DEPLOY_DIR"
t=$(now)
ilog "up -d (project $PROJECT, front door :$FRONT_PORT)"
dc up -d --no-build >"$IMAGES_CACHE/compose-up.log" 2>&1 || { cat "$IMAGES_CACHE/compose-up.log" >&2; fail "compose up -d"; exit 1; }

# Healthy = every container with a healthcheck is healthy, the one-shot topics exited 0, the
# rest run. Fails early on an exited/unhealthy container.
state() {
  local ids; ids="$(docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT")"
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}' $ids
}
healthy=0
while :; do
  st="$(state)"
  bad="$(awk '($2 == "exited" && $4 != 0) || $3 == "unhealthy" || $2 == "dead" {print $1}' <<<"$st")"
  waiting="$(awk '!(($2 == "exited" && $4 == 0) || $3 == "healthy" || ($3 == "none" && $2 == "running")) {print $1}' <<<"$st")"
  if [ -n "$bad" ]; then
    for s in $bad; do echo "--- $s (last lines)" >&2; dc logs --no-color --tail 40 "$s" >&2 || true; done
    fail "stack healthy (broken: $(echo $bad))"; exit 1
  fi
  if [ -z "$waiting" ]; then healthy=1; break; fi
  if [ "$(awk -v a="$t" -v b="$(now)" 'BEGIN { print (b - a > '"$WAIT_S"') }')" = 1 ]; then
    printf '%s\n' "$st" >&2
    for s in $waiting; do echo "--- $s (last lines)" >&2; dc logs --no-color --tail 30 "$s" >&2 || true; done
    fail "stack healthy within ${WAIT_S}s (still waiting: $(echo $waiting))"; exit 1
  fi
  sleep 2
done
T_HEALTHY="$(elapsed "$t")"
pass "stack healthy in ${T_HEALTHY}s ($(wc -l <<<"$st") containers: $(awk '{print $1}' <<<"$st" | sort | paste -sd' ' -))"

# ------------------------------------------------------------------ checks through the front door
body="$(mktemp)"
http() {  # http <expected-code> <curl args...>: prints the code, body in $body
  curl -sS -o "$body" -w '%{http_code}' --max-time 10 "${@:2}" 2>/dev/null || echo 000
}

# 1. the runbook's Step 1, verbatim (only the host port differs when the defaults were taken)
step1=(curl -X POST "$FRONT/api/system/status" -d '{"feature": "gamification", "enabled": false}')
ilog "runbook Step 1: ${step1[*]}"
code="$(http 200 "${step1[@]:1}")"
if [ "$code" = 200 ]; then pass "runbook Step 1 POST /api/system/status -> 200 $(head -c 200 "$body")"
else fail "runbook Step 1 POST /api/system/status -> $code $(head -c 300 "$body")"; fi

# 2. /api/health: the health service probes every HEALTH_INTERVAL_SECONDS (5 s here) and needs
#    two passing rounds for a target that came up after it: poll up to HEALTH_WAIT seconds
t=$(now)
for _ in $(seq "${HEALTH_WAIT:-90}"); do
  code="$(http 200 "$FRONT/api/health")"
  [ "$code" = 200 ] && break
  sleep 1
done
if [ "$code" = 200 ] && jq -e '.status == "pass" or .status == "warn"' "$body" >/dev/null 2>&1; then
  pass "GET /api/health -> 200 status=$(jq -r .status "$body") after $(elapsed "$t")s ($(jq -r '[.checks[][] | .status] | group_by(.) | map("\(.[0]) \(length)") | join(", ")' "$body"); not passing: $(jq -r '[.checks | to_entries[] | select(.value[0].status != "pass") | "\(.key)=\(.value[0].status)\(if .value[0].critical == false then " (non-critical)" else "" end)"] | join(", ")' "$body"))"
else
  fail "GET /api/health -> $code status=$(jq -r '.status // "?"' "$body" 2>/dev/null) not passing: $(jq -c '[.checks | to_entries[] | select(.value[0].status == "fail") | .key + ": " + (.value[0].output // "")]' "$body" 2>/dev/null || head -c 300 "$body")"
fi

# 3. OFREP, carrying a trace id of ours
trace_id="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
span_id="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
code="$(http 200 -X POST "$FRONT/ofrep/v1/evaluate/flags/gamification" -H 'Content-Type: application/json' \
  -H "traceparent: 00-$trace_id-$span_id-01" -d '{"context": {"targetingKey": "compose-check"}}')"
if [ "$code" = 200 ] && [ "$(jq -r '.value' "$body" 2>/dev/null)" = false ]; then
  pass "OFREP gamification -> 200 value=false (reason $(jq -r '.reason' "$body")), after Step 1 turned it off"
else fail "OFREP POST /ofrep/v1/evaluate/flags/gamification -> $code $(head -c 300 "$body") (want 200, value false)"; fi

# 4. that request's trace in Zipkin (its API; exports are batched: poll), and the trace view itself:
#    the Lens UI's page (a browser renders it from the same API: tests/e2e/test_trace_view.py)
FLAGS_SERVICE="${FLAGS_TRACE_SERVICE:-safeguard-flags}"
found=0
for _ in $(seq 30); do
  code="$(http 200 "$ZIPKIN/api/v2/trace/$trace_id")"
  if [ "$code" = 200 ] && jq -e --arg s "$FLAGS_SERVICE" --arg p "$span_id" \
      '[.[] | select(.localEndpoint.serviceName == $s and .parentId == $p)] | length > 0' "$body" >/dev/null 2>&1; then
    found=1; break
  fi
  sleep 1
done
if [ "$found" = 1 ]; then
  pass "Zipkin has trace $trace_id of the OFREP request ($(jq -r '[.[] | "\(.localEndpoint.serviceName): \(.name)"] | join(", ")' "$body"), under our span $span_id)"
else
  services="$(curl -s --max-time 5 "$ZIPKIN/api/v2/services" | jq -r 'join(",")' 2>/dev/null || true)"
  fail "Zipkin: no span of $FLAGS_SERVICE under $span_id in trace $trace_id (last answer $code $(head -c 200 "$body"); services with spans: ${services:-none})"
fi
code="$(http 200 "$ZIPKIN/zipkin/traces/$trace_id")"
if [ "$code" = 200 ] && grep -q '<title>Zipkin</title>' "$body" && grep -q 'static/js/' "$body"; then
  pass "Zipkin's Lens UI is served: GET /zipkin/traces/$trace_id -> 200 (the trace view at $ZIPKIN/zipkin/)"
else fail "Zipkin's Lens UI: GET /zipkin/traces/$trace_id -> $code $(head -c 200 "$body")"; fi

# 5. Kafka is not an open control plane, and recovery can kill flags (issue 10 #10, #11)
trigger_py='import asyncio, sys
from shared.events import TriggerCleared, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
episode, what = sys.argv[1], sys.argv[2]
common = dict(service="demo", trigger="error_rate_high", episode_id=episode, threshold=0.05)
event = TriggerFired(**common, value=0.5, window_seconds=30, detail="compose-check") if what == "fired" \
    else TriggerCleared(**common, value=0.0)
async def main() -> None:
    async with KafkaPublisher.start(KafkaSettings(), source="/compose-check") as pub:
        await asyncio.wait_for(pub.publish(event), 30)
asyncio.run(main())'
publish() {  # publish <service whose login is used> <episode> fired|cleared
  dc run --rm --no-deps -T "$1" python -c "$trigger_py" "$2" "$3" 2>&1
}
action_status() {  # the status of the disable_new_features action of episode $1 (GET /api/recovery/actions)
  code="$(http 200 "$FRONT/api/recovery/actions?service=demo")"
  jq -r --arg e "$1" '[.[] | select(.episode_id == $e and .action == "disable_new_features")][0] | "\(.status // "")\t\(.detail // "")"' "$body" 2>/dev/null || true
}
gamification() {
  http 200 -X POST "$FRONT/ofrep/v1/evaluate/flags/gamification" -H 'Content-Type: application/json' \
    -d '{"context": {"targetingKey": "compose-check"}}' >/dev/null
  jq -r '.value' "$body" 2>/dev/null || true
}
episode="compose-check-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
forged="$(publish demo-blue "forged-$episode" fired)" && forged_rc=0 || forged_rc=$?
if [ "$forged_rc" != 0 ] && grep -q TopicAuthorizationFailedError <<<"$forged"; then
  pass "Kafka ACLs: a TriggerFired sent with the demo app's login is refused (TopicAuthorizationFailedError)"
else fail "Kafka ACLs: a TriggerFired sent with the demo app's login was not refused (rc $forged_rc): $(tail -n 3 <<<"$forged")"; fi
code="$(http 200 -X POST "$FRONT/api/system/status" -d '{"feature": "gamification", "enabled": true}')"
[ "$code" = 200 ] && [ "$(gamification)" = true ] || fail "turning gamification on again before the recovery check"
t=$(now)
if out="$(publish topics "$episode" fired)"; then
  st=""
  for _ in $(seq "${RECOVERY_WAIT:-60}"); do
    st="$(action_status "$episode")"
    [ -n "${st%%$'\t'*}" ] && [ "$(gamification)" = false ] && break
    sleep 1
  done
  killed_s="$(elapsed "$t")"
  if [ "${st%%$'\t'*}" = started ] && [ "$(gamification)" = false ]; then
    publish topics "$episode" cleared >/dev/null || true   # the episode ends: recovery verifies its action
    for _ in $(seq 30); do st="$(action_status "$episode")"; [ "${st%%$'\t'*}" = started ] || break; sleep 1; done
  fi
  if [ "${st%%$'\t'*}" = succeeded ] && [ "$(gamification)" = false ]; then
    pass "recovery: TriggerFired (admin) -> disable_new_features killed gamification in ${killed_s}s (${st#*$'\t'}), succeeded on TriggerCleared; off through :$FRONT_PORT"
  else fail "recovery: disable_new_features for $episode: status '${st%%$'\t'*}' (${st#*$'\t'}), gamification '$(gamification)' (want succeeded, false)"; fi
else
  fail "publishing a TriggerFired as admin failed: $(tail -n 3 <<<"$out")"
fi

# 5b. recovery's Docker executor (issue 14): memory_high on demo-green (published as admin) -> recovery
#     restarts that container through the Docker Engine API (the socket mounted into its container) and
#     sees a new process that answers: a new StartedAt / PID in `docker inspect`, the action's detail
#     saying so; demo-blue untouched.
restart_py='import asyncio, sys
from shared.events import TriggerCleared, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
episode, what = sys.argv[1], sys.argv[2]
common = dict(service="demo", trigger="memory_high", episode_id=episode, threshold=90.0, instance="demo-green")
event = TriggerFired(**common, value=95.0, window_seconds=15, detail="compose-check") if what == "fired" \
    else TriggerCleared(**common, value=40.0)
async def main() -> None:
    async with KafkaPublisher.start(KafkaSettings(), source="/compose-check") as pub:
        await asyncio.wait_for(pub.publish(event), 30)
asyncio.run(main())'
executor_check() {
  local ep st green blue before after blue_after t out
  ep="compose-check-restart-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  green="$(dc ps -q demo-green)"; blue="$(dc ps -q demo-blue)"
  before="$(docker inspect -f '{{.State.StartedAt}} pid {{.State.Pid}}' "$green")"
  local blue_before; blue_before="$(docker inspect -f '{{.State.StartedAt}}' "$blue")"
  t=$(now)
  if ! out="$(dc run --rm --no-deps -T topics python -c "$restart_py" "$ep" fired 2>&1)"; then
    fail "recovery Docker executor: publishing memory_high as admin failed: $(tail -n 3 <<<"$out")"; return
  fi
  st=""
  for _ in $(seq "${RECOVERY_WAIT:-90}"); do
    code="$(http 200 "$FRONT/api/recovery/actions?service=demo")"
    st="$(jq -r --arg e "$ep" '[.[] | select(.episode_id == $e and .action == "restart_process")][0] | "\(.status // "")\t\(.detail // "")"' "$body" 2>/dev/null || true)"
    case "$st" in *"restarted one at a time"*|failed*|skipped*) break ;; esac
    sleep 1
  done
  local took; took="$(elapsed "$t")"
  after="$(docker inspect -f '{{.State.StartedAt}} pid {{.State.Pid}}' "$green")"
  blue_after="$(docker inspect -f '{{.State.StartedAt}}' "$blue")"
  dc run --rm --no-deps -T topics python -c "$restart_py" "$ep" cleared >/dev/null 2>&1 || true
  if [[ "$st" == *"restarted one at a time: demo-green: pid "* ]] && [ "$after" != "$before" ] \
      && [[ "$st" == *"-> pid ${after##* pid }"* ]] && [ "$blue_after" = "$blue_before" ]; then
    pass "recovery's Docker executor: memory_high on demo-green -> container restarted through the mounted Docker socket in ${took}s ($before -> $after; ${st#*$'\t'}); demo-blue untouched"
  else fail "recovery's Docker executor: action '${st:-none}' for $ep; demo-green $before -> $after; demo-blue $blue_before -> $blue_after"; fi
}
executor_check

# 6. blue/green in compose (issue 11): `safeguard deploy` of v2 onto green (DockerInstances: the
#    Docker Engine API restarts the container, its release file in the bind-mounted
#    SAFEGUARD_DEPLOY_DIR), canary 10 -> 100 %, then `safeguard rollback`: traffic back on blue,
#    the schema back to 0001, with a client loop on the demo's front (:DEMO_PORT) throughout.
#    With the preflight: the whole checklist on green before any traffic (its rehearsal ignores the
#    `pg_attver=N` column option Debian's PostgreSQL 15.20, the postgres:15 stand-in, dumps).
#    The CLI runs from a copy of the tree: its deploy history and backups (<checkout>/.stack/deploy,
#    .stack/backups) must not mix with the native stack's, and the native .stack/env is not read.
deploy_check() {
  local work loop codes pid out rc t bad n on_green schema
  [ -x "$ROOT/.venv/bin/python" ] || { fail "blue/green deploy in compose: no $ROOT/.venv (make venv)"; return; }
  work="$(mktemp -d)"; codes="$(mktemp)"
  if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard \
      | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -x -C "$work" || true
  else tar --exclude=./.stack --exclude=./.venv --exclude=./.git -cf - . | tar -x -C "$work" || true; fi
  if ! COMPOSE_PROJECT_NAME="$PROJECT" stack/compose-env.sh >"$work/compose.env" 2>"$codes"; then
    fail "blue/green deploy in compose: stack/compose-env.sh failed: $(tail -n 2 "$codes")"; rm -rf "$work" "$codes"; return
  fi
  sg() {
    (cd "$work" && unset SAFEGUARD_HOME && set -a && . ./compose.env && DEPLOY_BACKUP_DIR="$work/.stack/backups" \
       && set +a && timeout 300 "$ROOT/.venv/bin/python" -c 'from cli.main import main; main()' "$@")
  }
  # shellcheck disable=SC2016
  loop='while :; do r="$(curl -s --max-time 5 -w " %{http_code}" "$1" || true)"
          echo "${r##* } $(jq -r ".instance + \"/\" + .version" <<<"${r% *}" 2>/dev/null)"; sleep 0.05; done'
  bash -c "$loop" loop "http://127.0.0.1:$DEMO_PORT/healthz" >"$codes" 2>/dev/null & pid=$!
  t=$(now)
  out="$(sg deploy --version v2 --canary 10,100 --bake 5s 2>&1)" && rc=0 || rc=$?
  printf '%s\n' "$out" | sed 's/^/    deploy | /'
  local t_deploy; t_deploy="$(elapsed "$t")"
  on_green="$(curl -s --max-time 5 "http://127.0.0.1:$DEMO_GREEN_PORT/healthz" | jq -r .version 2>/dev/null || true)"
  local seen_green; seen_green="$(grep -c ' demo-green/v2$' "$codes" || true)"
  if [ "$rc" = 0 ] && grep -q 'v2 is live on green' <<<"$out" && [ "$on_green" = v2 ] && [ "$seen_green" -gt 0 ]; then
    pass "safeguard deploy --version v2 --canary 10,100 --bake 5s: live on green in ${t_deploy}s (container restarted through the Docker API, /healthz says v2; $seen_green client requests answered by demo-green/v2)"
  else fail "safeguard deploy v2 in compose: rc $rc, green says '${on_green:-nothing}', $seen_green requests on demo-green/v2: $(tail -n 3 <<<"$out")"; fi
  t=$(now)
  out="$(sg rollback --reason compose-check 2>&1)" && rc=0 || rc=$?
  printf '%s\n' "$out" | sed 's/^/    rollback | /'
  local t_rollback; t_rollback="$(elapsed "$t")"
  sleep 1; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  schema="$(. "$work/compose.env" && psql "$DEPLOY_DATABASE_URL" -Atc 'SELECT max(version) FROM demo.schema_migrations' 2>&1 || true)"
  local last; last="$(tail -n 5 "$codes" | awk '{print $2}' | sort -u | paste -sd, -)"
  n="$(grep -c . "$codes" || true)"
  bad="$(awk '$1 !~ /^[234][0-9][0-9]$/' "$codes" | sort | uniq -c | paste -sd, - || true)"
  if [ "$rc" = 0 ] && grep -q 'traffic on blue' <<<"$out" && grep -q 'deploy.rolled_back published' <<<"$out" \
      && [ "$schema" = 0001_items ] && [ "$last" = demo-blue/v1 ] \
      && [ -z "$bad" ] && [ "$n" -ge 20 ]; then
    pass "safeguard rollback: traffic on blue (v1) in ${t_rollback}s, schema back at $schema, DeploymentRolledBack on Kafka (admin login); client loop: $n requests, no 5xx or failed request ($(awk '{print $2}' "$codes" | sort | uniq -c | awk '{print $2" "$1}' | paste -sd, -))"
  else fail "safeguard rollback in compose: rc $rc, schema '$schema', last answers from '$last', $n requests, failed: ${bad:-none}: $(tail -n 3 <<<"$out")"; fi
  rm -rf "$work" "$codes"
}
deploy_check

# 7. the Node demo (issue 16) through its front (:NODE_DEMO_PORT): gamification follows the runbook's
#    Step 1 curl (off) and a flag enable (on), streamed by the flags service's flagd sync gRPC to the
#    flagd in-process provider; its OpenTelemetry metrics go through HAProxy's `otlp` frontend to the
#    intake, and the SLA processor counts them (GET /api/sla/demo-node through the front door); a
#    page-load beacon from the demo's page origin is counted too.
NODE="http://127.0.0.1:$NODE_DEMO_PORT"
node_flag() {  # the Node app's own answer for gamification (user compose-check), or its HTTP code
  code="$(http 200 "$NODE/?user=compose-check")"
  if [ "$code" = 200 ]; then jq -r '.gamification' "$body" 2>/dev/null || echo "?"; else echo "http-$code"; fi
}
node_until() {  # node_until <true|false> <max s>: polls the Node app; prints the milliseconds it took
  local t0 i; t0=$(now)
  for i in $(seq $(( $2 * 20 ))); do
    [ "$(node_flag)" = "$1" ] && { awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; return 0; }
    sleep 0.05
  done
  return 1
}
node_check() {
  local code info s_off s_on s_off2 lb_on lb_off n i count=0 pl=0 mem="" sla beacon t0
  code="$(http 200 "$NODE/healthz")"; info="$(jq -c '{instance, flags}' "$body" 2>/dev/null || head -c 200 "$body")"
  if [ "$code" != 200 ]; then fail "Node demo: GET :$NODE_DEMO_PORT/healthz -> $code $(head -c 200 "$body")"; return; fi
  "${step1[@]}" -s -o /dev/null --max-time 10 || true
  s_off="$(node_until false 10)" || s_off=""
  curl -s -o /dev/null --max-time 10 -X POST "$FRONT/api/system/status" -d '{"feature": "gamification", "enabled": true}' || true
  s_on="$(node_until true 10)" || s_on=""
  lb_on="$(http 200 "$NODE/api/gamification/leaderboard?user=compose-check")"
  "${step1[@]}" -s -o /dev/null --max-time 10 || true
  s_off2="$(node_until false 10)" || s_off2=""
  lb_off="$(http 404 "$NODE/api/gamification/leaderboard?user=compose-check")"
  if [ -n "$s_off" ] && [ -n "$s_on" ] && [ -n "$s_off2" ] && [ "$lb_on" = 200 ] && [ "$lb_off" = 404 ]; then
    pass "Node demo :$NODE_DEMO_PORT ($info): gamification off after Step 1, on ${s_on} ms after the enable (leaderboard 200), off ${s_off2} ms after Step 1 again (leaderboard 404): the flagd sync stream"
  else fail "Node demo :$NODE_DEMO_PORT: gamification off/on/off after '${s_off:-never}'/'${s_on:-never}'/'${s_off2:-never}' ms, leaderboard $lb_on then $lb_off (want 200, 404); now '$(node_flag)'"; fi
  n=0; for i in $(seq 30); do [ "$(http 200 "$NODE/?user=u$i")" = 200 ] && n=$((n + 1)); done
  # a beacon as the demo's page sends it (JSON in a text/plain body, from the page's origin)
  beacon="$(http 202 -X POST "$FRONT/api/beacon" -H 'Content-Type: text/plain' -H "Origin: $NODE" \
    -d '{"service": "demo-node", "page": "/", "lcp_ms": 420, "load_ms": 650, "ttfb_ms": 40, "dom_content_loaded_ms": 300}')"
  t0=$(now)
  for i in $(seq "${SLA_WAIT:-60}"); do
    code="$(http 200 "$FRONT/api/sla/demo-node")"
    if [ "$code" = 200 ]; then
      count="$(jq -r '.last_5m.count // 0' "$body")"; pl="$(jq -r '.page_load.count // 0' "$body")"
      mem="$(jq -r '.memory // {} | keys | join(",")' "$body" 2>/dev/null || true)"
      [ "$count" -ge "$n" ] && [ "$pl" -ge 1 ] && [ -n "$mem" ] && break
    fi
    sleep 1
  done
  sla="$(jq -c '{requests: .last_5m.count, error_rate: .last_5m.error_rate, page_load: .page_load.count, memory: (.memory // {} | keys)}' "$body" 2>/dev/null || head -c 200 "$body")"
  if [ "$code" = 200 ] && [ "$n" = 30 ] && [ "$count" -ge "$n" ] && [ "$beacon" = 204 ] && [ "$pl" -ge 1 ] && [ -n "$mem" ]; then
    pass "Node demo OTLP metrics -> haproxy:4318 -> intake -> SLA: GET /api/sla/demo-node -> 200 $sla after $(elapsed "$t0")s ($n requests sent; beacon -> $beacon)"
  else fail "Node demo telemetry: GET /api/sla/demo-node -> $code $sla ($n of 30 requests answered; want >= $n counted, a page load, memory; beacon -> $beacon)"; fi
}
node_check

# 8. the console through the front door: sign in with the admin token, the overview and the flags page render
console_check() {
  local token jar; jar="$(mktemp)"
  token="$(dc run --rm --no-deps -T --entrypoint cat topics /run/secrets/env 2>/dev/null | tr -d "'\r" | sed -n "s/^SAFEGUARD_ADMIN_TOKEN=//p")"
  code="$(http 303 -c "$jar" -X POST "$FRONT/console/login" --data-urlencode "token=$token" -d name=compose-check -d next=/console)"
  local login="$code"
  code="$(http 200 -b "$jar" "$FRONT/console")"
  local overview="$code" ok=0
  grep -q 'compose-check' "$body" && grep -q 'id="overview"' "$body" && ok=1
  code="$(http 200 -b "$jar" "$FRONT/console/flags?q=gamification")"
  if [ "$login" = 303 ] && [ "$overview" = 200 ] && [ "$ok" = 1 ] && [ "$code" = 200 ] && grep -q 'gamification' "$body"; then
    pass "console: signed in as compose-check through :$FRONT_PORT/console (303), the overview and the flags page render (gamification listed)"
  else fail "console: login -> $login, /console -> $overview (signed-in overview: $ok), /console/flags -> $code $(head -c 200 "$body")"; fi
  rm -f "$jar"
}
console_check

# 8b. the watchdog: the SLA processor hung (`docker pause`: a frozen process, which no restart policy sees) ->
#     the health service fires `unresponsive` itself -> the notifier opens an incident, recovery restarts the
#     container through the Docker Engine API (unpause, then restart) -> the trigger clears and the incident is
#     resolved at level 1, no one paged, nobody unpausing it (services/health/watchdog.py, config/recovery.yaml)
# `docker pause` freezes the container's cgroup; the kernel's freezer gives up when a task does not freeze in time
# (runc: "OCI runtime pause failed: unable to freeze", once in CI on a loaded machine): that is the fault not
# injected, not a finding, so it is tried again (5 times, 1 s apart) before the check fails
pause_container() {
  local i
  for i in 1 2 3 4 5; do
    if docker pause "$1" >/dev/null; then return 0; fi
    ilog "docker pause $1 failed (attempt $i of 5); state: $(docker inspect -f '{{.State.Status}} restarts={{.RestartCount}} started={{.State.StartedAt}}' "$1")"
    sleep 1
  done
  return 1
}

watchdog_check() {
  local sla iid="" ep="" before started state pages=0 st="" level="" act="" t t_open t_done restarted=""
  sla="$(dc ps -q sla)"
  started="$(docker inspect -f '{{.State.StartedAt}}' "$sla")"
  code="$(http 200 "$FRONT/api/incidents?days=1")"
  before="$(jq -c '[.[] | select(.service == "sla" and .trigger == "unresponsive") | .incident_id]' "$body")"
  if ! pause_container "$sla"; then fail "watchdog: docker pause of the SLA container failed 5 times"; return; fi
  t=$(now)
  for _ in $(seq "${WATCHDOG_WAIT:-90}"); do
    code="$(http 200 "$FRONT/api/incidents?days=1")"
    iid="$(jq -r --argjson b "${before:-[]}" '[.[] | select(.service == "sla" and .trigger == "unresponsive")
           | .incident_id | select(. as $i | $b | index($i) | not)][0] // ""' "$body" 2>/dev/null || true)"
    [ -n "$iid" ] && break
    sleep 1
  done
  t_open="$(elapsed "$t")"
  if [ -n "$iid" ]; then
    for _ in $(seq "${WATCHDOG_WAIT:-120}"); do
      code="$(http 200 "$FRONT/api/incidents/$iid")"; st="$(jq -r .status "$body" 2>/dev/null || true)"
      [ "$st" = resolved ] && break
      sleep 1
    done
    level="$(jq -r .level "$body" 2>/dev/null || true)"; ep="$(jq -r .episode_id "$body" 2>/dev/null || true)"
    code="$(http 200 "$FRONT/api/incidents/$iid/deliveries")"
    pages="$(jq '[.[] | select(.channel == "oncall_page")] | length' "$body" 2>/dev/null || echo 0)"
    code="$(http 200 "$FRONT/api/recovery/actions?service=sla&limit=5")"
    act="$(jq -r --arg e "$ep" '[.[] | select(.episode_id == $e and .action == "restart_process") | .status][0] // ""' \
           "$body" 2>/dev/null || true)"
  fi
  t_done="$(elapsed "$t")"
  state="$(docker inspect -f '{{.State.StartedAt}} {{.State.Paused}}' "$sla")"   # a new start, not paused
  if [ "${state% *}" != "$started" ] && [ "${state#* }" = false ]; then restarted=yes
  else docker unpause "$sla" >/dev/null 2>&1 || true; fi   # leave the stack running for the checks after
  if [ -n "$iid" ] && [ "$st" = resolved ] && [ "$level" = 1 ] && [ "$pages" = 0 ] && [ "$act" = succeeded ] \
     && [ "$restarted" = yes ]; then
    pass "watchdog: sla paused -> incident $iid ${t_open}s after the pause; recovery restarted the container; resolved at level 1, no page, ${t_done}s after the pause"
  else fail "watchdog: sla paused -> incident '${iid:-none}' after ${t_open}s, status '${st:-}', level '$level', $pages page(s), recovery's restart '${act:-none}', container restarted '${restarted:-no}'"; fi
}
watchdog_check

# 9. the generated credentials are nowhere in the containers' logs
values="$( { dc run --rm --no-deps -T --entrypoint sh kafka -c 'for f in /run/secrets/kafka-*; do cat "$f"; echo; done'
             dc run --rm --no-deps -T --entrypoint cat postgres /run/secrets/postgres-password; echo
             dc run --rm --no-deps -T --entrypoint cat topics /run/secrets/env | sed -n "s/^SAFEGUARD_ADMIN_TOKEN=//p"
           } 2>/dev/null | tr -d "'\r" | awk 'length($0) >= 16' )"
logs="$(mktemp)"; dc logs --no-color >"$logs" 2>&1 || true
leaked=0; while read -r v; do [ -z "$v" ] || ! grep -qF -- "$v" "$logs" || leaked=$((leaked + 1)); done <<<"$values"
n="$(grep -c . <<<"$values" || true)"
if [ "$n" -ge 9 ] && [ "$leaked" = 0 ]; then pass "secrets: $n generated credentials (Kafka logins, Postgres, admin token), none in $(wc -l <"$logs") log lines"
else fail "secrets: $leaked of $n generated credentials found in the containers' logs (or fewer than 9 found)"; fi
rm -f "$logs" "$body"

# ------------------------------------------------------------------ report
echo
echo "compose-check ($COMPOSE, project $PROJECT, front door :$FRONT_PORT)"
printf '  %s\n' "${results[@]}"
echo "  timings: stand-in/upstream images ${T_STANDINS}s, safeguard image ${T_IMAGE}s, node image ${T_NODE_IMAGE}s, up -> healthy ${T_HEALTHY}s, total $(elapsed "$T0")s"
"$IMAGES_SRC/build.sh" --list | sed 's/^/  /'
printf '  %-36s %-10s %s\n' "$SAFEGUARD_IMAGE" ours "$(image_size "$SAFEGUARD_IMAGE")"
printf '  %-36s %-10s %s\n' "$SAFEGUARD_NODE_IMAGE" ours "$(image_size "$SAFEGUARD_NODE_IMAGE")"
if printf '%s\n' "${results[@]}" | grep -q '^FAIL'; then exit 1; fi
ilog "compose-check passed"
