#!/usr/bin/env bash
# Starts the native local stack (`make up`): Kafka (KRaft), Postgres, Redis, HAProxy and the
# Safeguard programs of stack/programs.conf, all under ONE supervisord from .venv.
# State, data and logs live in .stack/. Idempotent: with the stack running it re-reads the
# config, starts what is stopped and waits again.
# Exit status: 0 when every program is RUNNING and every Safeguard program answers its
# health path with 200; non-zero otherwise (the stack is left running for debugging).
set -euo pipefail
STACK_READ_PORTS=0
# shellcheck source=stack/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

T0=$(now)
cold=()

[ -x "$VENV/bin/supervisord" ] || die "no $VENV/bin/supervisord: run 'make venv' first"
mkdir -p "$LOGS" "$RUN" "$STACK/kafka/data" "$STACK/redis"

# ------------------------------------------------------------------ programs list
# stack/programs.conf -> the group and one [program:<name>] section each (stack/supervisor_conf.py,
# which checks every line); every program's port variable needs a value (stack/lib.sh)
SAFEGUARD_PROGRAMS="$("$PY" "$STACK_SRC/supervisor_conf.py" "$STACK_SRC/programs.conf" --root "$ROOT" --logs "$LOGS")" ||
  die "stack/programs.conf: fix the line named above"
while read -r name pvar _; do
  [ -n "${!pvar:-}" ] || die "stack/programs.conf: $name uses \$$pvar which has no value (add a default in stack/lib.sh)"
done < <(programs)

# ------------------------------------------------------------------ install / fetch
jars_before="$(cat "$STACK/kafka/lib/.pom.sha256" 2>/dev/null || true)"
zipkin_before="$(cat "$STACK/zipkin/.pom.sha256" 2>/dev/null || true)"
t=$(now)
"$STACK_SRC/install.sh" || die "stack/install.sh failed"
[ "$(cat "$STACK/kafka/lib/.pom.sha256" 2>/dev/null || true)" = "$jars_before" ] || cold+=("fetched Kafka jars ($(elapsed "$t")s)")
[ "$(cat "$STACK/zipkin/.pom.sha256" 2>/dev/null || true)" = "$zipkin_before" ] || cold+=("fetched the Zipkin jar")

# ------------------------------------------------------------------ ports
SUP_PID="$(supervisor_pid || true)"
check_ports() {
  local report foreign leftovers
  # shellcheck disable=SC2046
  report="$("$PY" "$STACK_SRC/stackutil.py" holders "$OWNER_MARK" $(all_ports))"
  foreign="$(awk -F'\t' '$3 == "foreign"' <<<"$report")"
  if [ -n "$foreign" ]; then
    while IFS=$'\t' read -r port pid _ cmd; do
      printf '\033[31m[stack] ERROR:\033[0m port %s is already in use by pid %s: %s\n' "$port" "$pid" "$cmd" >&2
    done <<<"$foreign"
    die "free the port(s) above or choose others (e.g. KAFKA_PORT=19092 make up); nothing was started"
  fi
  if [ -z "$SUP_PID" ]; then
    leftovers="$(awk -F'\t' '$3 == "ours" {print $1 " (pid " $2 ")"}' <<<"$report" | paste -sd, -)"
    [ -z "$leftovers" ] || die "port(s) $leftovers held by leftovers of an earlier stack whose supervisord is gone: run 'make down' first"
  fi
}
check_ports

# ------------------------------------------------------------------ generate config
JAVA="$(command -v java)"
REDIS_SERVER="$(command -v redis-server)"
HAPROXY="$(command -v haproxy)"
HAPROXY_SOCK="$RUN/haproxy.sock"
HAPROXY_STATE="$STACK/haproxy.state"
HAPROXY_RESOLVERS=""
HAPROXY_SERVER_OPTS=""
FRONT_BIND="127.0.0.1:$FRONT_PORT"
DEMO_BIND="127.0.0.1:$DEMO_PORT"
FLAGS_SYNC_BIND="127.0.0.1:$FLAGS_SYNC_PORT" FLAGS_SYNC_1_ADDR="127.0.0.1:$FLAGS_SYNC_PORT_1" FLAGS_SYNC_2_ADDR="127.0.0.1:$FLAGS_SYNC_PORT_2"
FLAGS_1_HTTP_PORT="$FLAGS_PORT" FLAGS_2_HTTP_PORT="$FLAGS_PORT_2"  # the sync backend checks each instance's /readyz
FLAGS_ADDR="127.0.0.1:$FLAGS_PORT" FLAGS_2_ADDR="127.0.0.1:$FLAGS_PORT_2" HEALTH_ADDR="127.0.0.1:$HEALTH_PORT" SLA_ADDR="127.0.0.1:$SLA_PORT"
RECOVERY_ADDR="127.0.0.1:$RECOVERY_PORT" NOTIFIER_ADDR="127.0.0.1:$NOTIFIER_PORT"
DEMO_BLUE_ADDR="127.0.0.1:$DEMO_BLUE_PORT" DEMO_GREEN_ADDR="127.0.0.1:$DEMO_GREEN_PORT"
NODE_DEMO_BIND="127.0.0.1:$NODE_DEMO_PORT"
NODE_BLUE_ADDR="127.0.0.1:$NODE_BLUE_PORT" NODE_GREEN_ADDR="127.0.0.1:$NODE_GREEN_PORT"
CONSOLE_ADDR="127.0.0.1:$CONSOLE_PORT" INTAKE_ADDR="127.0.0.1:$INTAKE_PORT" OTLP_BIND="127.0.0.1:$OTLP_HTTP_PORT"
OTLP_TRACES_ADDR="$INTAKE_ADDR"   # Zipkin takes no OTLP: the intake translates /v1/traces for it (docs/tracing.md)

# Postgres runs as the postgres OS user: its dirs must be reachable by it. When the checkout
# is not traversable by that user (e.g. under /root), keep pg data in /var/tmp, linked from .stack/pg.
PG_HOME="$STACK/pg"
if [ "$(id -u)" = 0 ] && [ "$PG_OS_USER" != root ]; then
  mkdir -p "$PG_HOME"
  chown "$PG_OS_USER:" "$PG_HOME" 2>/dev/null || true
  if ! runuser -u "$PG_OS_USER" -- test -w "$PG_HOME/." 2>/dev/null; then
    alt="/var/tmp/safeguard-pg-$(printf '%s' "$STACK" | md5sum | cut -c1-12)"
    warn "$PG_OS_USER cannot reach $PG_HOME; keeping Postgres data in $alt (linked as .stack/pg)"
    rmdir "$PG_HOME" 2>/dev/null || true
    mkdir -p "$alt"; chown "$PG_OS_USER:" "$alt"; chmod 700 "$alt"
    [ -L "$PG_HOME" ] || ln -s "$alt" "$PG_HOME"
    PG_HOME="$alt"
  fi
fi
mkdir -p "$PG_HOME"
PGDATA="$PG_HOME/data"
PG_SOCKET_DIR="$RUN/pg"
[ "$PG_HOME" = "$STACK/pg" ] || PG_SOCKET_DIR="$PG_HOME/run"   # fallback: all of it reachable
mkdir -p "$PG_SOCKET_DIR"
if [ "$(id -u)" = 0 ] && [ "$PG_OS_USER" != root ]; then
  chown "$PG_OS_USER:" "$PG_HOME" "$PG_SOCKET_DIR"
  PG_USER_LINE="user=$PG_OS_USER"
  SUPERVISOR_USER_LINE="user=root"
else
  PG_USER_LINE=""
  SUPERVISOR_USER_LINE=""
fi

# Kafka class data sharing: written at the first clean stop, used from then on. While our
# supervisord runs keep the current choice (changing it would restart Kafka on `update`).
KAFKA_JSA="$STACK/kafka/kafka.jsa"
if [ -n "$SUP_PID" ] && cur="$(grep -o -- '-XX:[A-Za-z]*Archive[A-Za-z]*=[^ ]*' "$SUPERVISOR_CONF" 2>/dev/null)"; then
  KAFKA_CDS_OPT="$cur"
elif [ -s "$KAFKA_JSA" ]; then
  KAFKA_CDS_OPT="-XX:SharedArchiveFile=$KAFKA_JSA"
else
  KAFKA_CDS_OPT="-XX:ArchiveClassesAtExit=$KAFKA_JSA"
fi

# The admin token for changes (flags, fault injection): made once, kept in .stack/admin-token (mode 600)
[ -s "$STACK/admin-token" ] || (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' > "$STACK/admin-token")
# Credentials: made on first start in .stack/secrets/ (mode 600), never printed (stack/lib.sh `secret`)
[ -n "$POSTGRES_PASSWORD" ] || POSTGRES_PASSWORD="$(secret postgres-password)"
for p in $KAFKA_PRINCIPALS; do secret "kafka-$p" >/dev/null; done
KAFKA_ADMIN_PASSWORD="$(secret kafka-admin)"
KAFKA_SASL_MECHANISM_LC="${KAFKA_SASL_MECHANISM,,}"

# .stack/env: what every Safeguard program (and the tests) get; it holds the token, so only we read it
: > "$ENV_FILE.tmp" && chmod 600 "$ENV_FILE.tmp"
{
  echo "# Generated by stack/up.sh -- environment of the Safeguard programs in the native stack"
  echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
  # the broker's super user, for tests and tools; stack/run.sh gives each program its own principal
  echo "KAFKA_SASL_MECHANISM=$KAFKA_SASL_MECHANISM"
  echo "KAFKA_SASL_USERNAME=admin"
  echo "KAFKA_SASL_PASSWORD=$KAFKA_ADMIN_PASSWORD"
  echo "SAFEGUARD_SECRETS_DIR=$SECRETS"
  echo "POSTGRES_DSN=postgresql://$POSTGRES_USER:$POSTGRES_PASSWORD@127.0.0.1:$POSTGRES_PORT/$POSTGRES_DB"
  echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  echo "SAFEGUARD_ENV=local"
  echo "SAFEGUARD_ADMIN_TOKEN=$(cat "$STACK/admin-token")"
  echo "SAFEGUARD_FRONT_URL=http://127.0.0.1:$FRONT_PORT"
  # the kill switch and the demo apps' SDKs go through the front door: HAProxy spreads them over both
  # flags instances and retries on the other one when one dies (a kill must not wait for a restart)
  echo "RECOVERY_FLAGS_URL=http://127.0.0.1:$FRONT_PORT"
  echo "DEMO_FLAGS_URL=http://127.0.0.1:$FRONT_PORT"
  echo "FLAGS_JOURNAL_PATH=$STACK/flags/pending-off.jsonl"
  echo "SAFEGUARD_DEMO_URL=http://127.0.0.1:$DEMO_PORT"
  echo "NOTIFIER_ONCALL_FILE=$ROOT/config/oncall.yaml"   # L2/L3 page whoever is on call (docs/oncall.md)
  for s in flags health sla recovery notifier; do  # the console reads the services directly
    v="${s^^}_PORT"; echo "CONSOLE_${s^^}_URL=http://127.0.0.1:${!v}"
  done
  echo "HAPROXY_ADMIN_SOCKET=$HAPROXY_SOCK"
  # every program's spans, as Zipkin JSON v2 (shared/telemetry.py; the Node demo's telemetry.js)
  echo "OTEL_EXPORTER_ZIPKIN_ENDPOINT=http://127.0.0.1:$ZIPKIN_PORT/api/v2/spans"
  # every port (config/health.yaml reads FRONT_PORT, DEMO_PORT, FLAGS_PORT, ...)
  for v in FLAGS_PORT HEALTH_PORT SLA_PORT RECOVERY_PORT NOTIFIER_PORT $(port_vars); do
    echo "$v=${!v}"
  done | awk '!seen[$0]++'
} >> "$ENV_FILE.tmp" && mv "$ENV_FILE.tmp" "$ENV_FILE"
for v in $(port_vars); do echo "$v=${!v}"; done | awk '!seen[$0]++' > "$STACK/ports"
# .stack/recovery.env: how recovery restarts a process here (docs/recovery-executors.md): through
# supervisord's XML-RPC (its unix socket, mode 0700, no password), one demo colour at a time, and the SLA
# processor when the health service's watchdog finds it hung. Only the
# recovery program reads it (stack/run.sh): tests load .stack/env, and their own recovery must not
# restart the stack's programs.
recovery_target() {  # recovery_target <instance> <port>: one RECOVERY_TARGETS entry (program safeguard:<instance>)
  printf '{"instance": "%s", "program": "safeguard:%s", "health_url": "http://127.0.0.1:%s/healthz"}' "$1" "$1" "$2"
}
{
  echo "# Generated by stack/up.sh -- the recovery program's executor (stack/run.sh loads it for recovery only)"
  echo "RECOVERY_EXECUTOR=supervisord"
  echo "RECOVERY_SUPERVISOR_SOCKET=$SUPERVISOR_SOCK"
  echo "RECOVERY_TARGETS='{\"sla\": [$(recovery_target sla "$SLA_PORT")], \"demo\": [$(recovery_target demo-blue "$DEMO_BLUE_PORT"), $(recovery_target demo-green "$DEMO_GREEN_PORT")], \"demo-node\": [$(recovery_target demo-node-blue "$NODE_BLUE_PORT"), $(recovery_target demo-node-green "$NODE_GREEN_PORT")]}'"
} > "$STACK/recovery.env.tmp" && mv "$STACK/recovery.env.tmp" "$STACK/recovery.env"

changed=()
(umask 077 && render "$STACK_SRC/kafka/server.properties.in" "$STACK/kafka/server.properties") && changed+=(kafka)
chmod 600 "$STACK/kafka/server.properties"   # it holds the admin password (JAAS)
render "$STACK_SRC/redis.conf.in" "$STACK/redis/redis.conf" && changed+=(redis)
render "$STACK_SRC/haproxy.cfg.in" "$STACK/haproxy.cfg" && changed+=(haproxy)
render "$STACK_SRC/supervisord.conf.in" "$SUPERVISOR_CONF" || true
"$HAPROXY" -c -q -f "$STACK/haproxy.cfg" || die "generated .stack/haproxy.cfg is invalid (see above)"

# ------------------------------------------------------------------ one-time initialisation
# SCRAM users are written into the KRaft metadata when the storage is formatted. Principals added to
# KAFKA_PRINCIPALS since (the others' passwords unchanged) get theirs from the running broker below
# (SCRAM_ADD); storage formatted for other users (or before SASL) is formatted again: messages are dropped.
scram_line() {  # scram_line <principal>...: what .stack/kafka/scram-users says for storage formatted with them
  local p files=()
  for p in "$@"; do files+=("$SECRETS/kafka-$p"); done
  echo "$KAFKA_SASL_MECHANISM $* $(printf '%s\n' "${files[@]}" | LC_ALL=C sort | xargs cat | md5sum | cut -c1-12)"
}
# shellcheck disable=SC2086
SCRAM_USERS="$(scram_line $KAFKA_PRINCIPALS)"
SCRAM_ADD=()
scram_stored="$(cat "$STACK/kafka/scram-users" 2>/dev/null || true)"
if [ -s "$STACK/kafka/data/meta.properties" ] && [ "$scram_stored" != "$SCRAM_USERS" ]; then
  read -r -a scram_old <<<"$scram_stored"
  if [ "${#scram_old[@]}" -ge 3 ]; then scram_old=("${scram_old[@]:1:${#scram_old[@]}-2}"); else scram_old=(); fi
  # the principals between the mechanism and the hash; the added ones must be all that changed
  for p in $KAFKA_PRINCIPALS; do [[ " ${scram_old[*]} " == *" $p "* ]] || SCRAM_ADD+=("$p"); done
  if [ "${#scram_old[@]}" -eq 0 ] || [ "$scram_stored" != "$(scram_line "${scram_old[@]}")" ] ||
     [ "$(( ${#scram_old[@]} + ${#SCRAM_ADD[@]} ))" -ne "$(wc -w <<<"$KAFKA_PRINCIPALS")" ]; then
    SCRAM_ADD=()
  fi
fi
if [ -s "$STACK/kafka/data/meta.properties" ] && [ "$scram_stored" != "$SCRAM_USERS" ] && [ "${#SCRAM_ADD[@]}" -eq 0 ]; then
  warn "Kafka storage predates its SCRAM users ($KAFKA_PRINCIPALS): formatting it again (old messages are dropped)"
  [ -z "$SUP_PID" ] || ctl stop infra:kafka >/dev/null 2>&1 || true
  rm -rf "$STACK/kafka/data" && mkdir -p "$STACK/kafka/data"
fi
if [ ! -s "$STACK/kafka/data/meta.properties" ]; then
  t=$(now)
  [ -s "$STACK/kafka/cluster.id" ] ||
    "$JAVA" -cp "$STACK/kafka/lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 > "$STACK/kafka/cluster.id"
  scram=()
  for p in $KAFKA_PRINCIPALS; do scram+=(--add-scram "$KAFKA_SASL_MECHANISM=[name=$p,password=$(secret "kafka-$p")]"); done
  "$JAVA" -cp "$STACK/kafka/lib/*" kafka.tools.StorageTool format -t "$(cat "$STACK/kafka/cluster.id")" \
    -c "$STACK/kafka/server.properties" --ignore-formatted "${scram[@]}" >"$LOGS/kafka-format.log" 2>&1 ||
    { cat "$LOGS/kafka-format.log" >&2; die "Kafka storage format failed"; }
  unset scram
  echo "$SCRAM_USERS" > "$STACK/kafka/scram-users"
  cold+=("formatted Kafka storage with SCRAM users ($(elapsed "$t")s)")
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  t=$(now)
  mkdir -p "$PGDATA"; chmod 700 "$PGDATA"
  [ "$(id -u)" != 0 ] || chown "$PG_OS_USER:" "$PGDATA"
  (cd / && as_pg "$PG_BIN/initdb" -D "$PGDATA" --username=postgres --auth-local=trust \
      --auth-host=scram-sha-256 --encoding=UTF8 --locale=C) >"$LOGS/initdb.log" 2>&1 ||
    { cat "$LOGS/initdb.log" >&2; die "initdb failed"; }
  cold+=("initdb ($(elapsed "$t")s)")
fi

# ------------------------------------------------------------------ start infra
if [ -n "$SUP_PID" ]; then
  log "supervisord already running (pid $SUP_PID): re-reading config"
  ctl reread >/dev/null
  ctl update >/dev/null
  # a program added to programs.conf re-creates the group (supervisord stops it): start it again now
  ctl start 'safeguard:*' >/dev/null 2>&1 || true
  for p in "${changed[@]}"; do
    if [[ "$(ctl status "infra:$p" 2>/dev/null || true)" == *RUNNING* ]]; then
      # keep the traffic where `safeguard deploy/switch` put it (loaded back by load-server-state-from-file)
      [ "$p" != haproxy ] || "$PY" "$STACK_SRC/stackutil.py" haproxy-save-state "$HAPROXY_SOCK" "$HAPROXY_STATE" || true
      log "config of $p changed: restarting it"; ctl restart "infra:$p" >/dev/null || true
    fi
  done
  ctl start 'infra:*' >/dev/null 2>&1 || true
else
  log "starting supervisord"
  rm -f "$SUPERVISOR_SOCK"
  "$VENV/bin/supervisord" -c "$SUPERVISOR_CONF"
  for _ in $(seq 50); do [ -S "$SUPERVISOR_SOCK" ] && ctl pid >/dev/null 2>&1 && break; sleep 0.1; done
  SUP_PID="$(supervisor_pid)" || die "supervisord did not start: see $LOGS/supervisord.log"
fi
T_INFRA=$(now)

fail_infra() {
  ctl status 'infra:*' >&2 || true
  echo "--- last lines of $LOGS/$1.log" >&2; tail -n 30 "$LOGS/$1.log" >&2 || true
  die "$2"
}

pg_ready() {
  local i
  for i in $(seq 300); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -t 2 && return 0
    sleep 0.2
  done
  return 1
}
pg_ready || fail_infra postgres "Postgres is not ready on :$POSTGRES_PORT"
# role and database, idempotently (over the unix socket, as the postgres superuser)
(cd / && as_pg "$PG_BIN/psql" -h "$PG_SOCKET_DIR" -p "$POSTGRES_PORT" -U postgres -d postgres -qAt \
   -v ON_ERROR_STOP=1 -v u="$POSTGRES_USER" -v p="$POSTGRES_PASSWORD" -v d="$POSTGRES_DB") >/dev/null <<'SQL' ||
SELECT format('CREATE ROLE %I LOGIN', :'u') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
-- CREATEDB: backup verify and db rehearse restore into scratch databases (deploy/), then drop them
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'d', :'u') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') \gexec
SQL
  die "could not create role/database $POSTGRES_USER/$POSTGRES_DB"
log "postgres ready  (127.0.0.1:$POSTGRES_PORT, db $POSTGRES_DB) at +$(elapsed "$T_INFRA")s"

"$PY" "$STACK_SRC/stackutil.py" redis-ping 127.0.0.1 "$REDIS_PORT" 30 || fail_infra redis "Redis does not answer PING on :$REDIS_PORT"
log "redis ready     (127.0.0.1:$REDIS_PORT) at +$(elapsed "$T_INFRA")s"

(set -a; . "$ENV_FILE"; set +a; "$PY" "$STACK_SRC/stackutil.py" kafka-ready "127.0.0.1:$KAFKA_PORT" 120) ||
  fail_infra kafka "Kafka is not ready on :$KAFKA_PORT (or does not take the admin login)"
KAFKA_SECS="$(elapsed "$T_INFRA")"
log "kafka ready     (127.0.0.1:$KAFKA_PORT) at +${KAFKA_SECS}s"

if [ "${#SCRAM_ADD[@]}" -gt 0 ]; then   # new principals: their SCRAM credentials, added on the running broker
  admin_props="$(umask 077 && mktemp)"
  printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=%s\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="%s";\n' \
    "$KAFKA_SASL_MECHANISM" "$KAFKA_ADMIN_PASSWORD" > "$admin_props"
  for p in "${SCRAM_ADD[@]}"; do
    "$JAVA" -cp "$STACK/kafka/lib/*" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --command-config "$admin_props" --alter --entity-type users --entity-name "$p" \
      --add-config "$KAFKA_SASL_MECHANISM=[iterations=4096,password=$(secret "kafka-$p")]" >"$LOGS/kafka-scram.log" 2>&1 ||
      { rm -f "$admin_props"; grep -v -i password "$LOGS/kafka-scram.log" >&2; die "could not add the Kafka SCRAM user $p"; }
  done
  rm -f "$admin_props"
  echo "$SCRAM_USERS" > "$STACK/kafka/scram-users"
  log "kafka scram     added ${SCRAM_ADD[*]} on the running broker"
fi

"$PY" "$STACK_SRC/stackutil.py" wait-tcp 127.0.0.1 "$FRONT_PORT" 15 || fail_infra haproxy "HAProxy does not listen on :$FRONT_PORT"

# ------------------------------------------------------------------ topics
if "$PY" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("shared.topics") else 1)' 2>/dev/null; then
  t=$(now)
  (set -a; . "$ENV_FILE"; set +a; export "$OWNER_MARK"; timeout 120 "$PY" -m shared.topics create) \
    >"$LOGS/topics.log" 2>&1 || { tail -n 30 "$LOGS/topics.log" >&2; die "python -m shared.topics create failed (log: $LOGS/topics.log)"; }
  log "topics created  ($(elapsed "$t")s)"
  t=$(now)
  (set -a; . "$ENV_FILE"; set +a; export "$OWNER_MARK"; timeout 120 "$PY" -m shared.kafka.acls apply) \
    >"$LOGS/acls.log" 2>&1 || { tail -n 30 "$LOGS/acls.log" >&2; die "python -m shared.kafka.acls apply failed (log: $LOGS/acls.log)"; }
  log "kafka acls set  ($(elapsed "$t")s; one principal per service: python -m shared.kafka.acls list)"
else
  warn "shared.topics is not there yet: skipping topic creation (auto.create.topics.enable=true)"
fi

# ------------------------------------------------------------------ Safeguard programs
T_SVC=$(now)
ctl start 'safeguard:*' >/dev/null 2>&1 || true   # crashing programs keep retrying; judged below
specs=()
while read -r name pvar hpath cmd; do specs+=("safeguard:$name=http://127.0.0.1:${!pvar}$hpath"); done < <(programs)
log "waiting for the Safeguard programs (up to ${SERVICE_WAIT:-60}s) ..."
svc_ok=0
"$PY" "$STACK_SRC/stackutil.py" wait-programs "$SUPERVISOR_SOCK" "${SERVICE_WAIT:-60}" "${specs[@]}" || svc_ok=1
# and until HAProxy's own checks agree, so the front door answers the moment we return
if [ "$svc_ok" = 0 ]; then
  "$PY" "$STACK_SRC/stackutil.py" wait-haproxy "$HAPROXY_SOCK" 20 || svc_ok=1
fi
# and until /api/health says pass: the health service has a verdict on every target (issue 15)
if [ "$svc_ok" = 0 ]; then
  "$PY" "$STACK_SRC/stackutil.py" wait-health "http://127.0.0.1:$FRONT_PORT/api/health" "${HEALTH_WAIT:-60}" || svc_ok=1
fi
SVC_SECS="$(elapsed "$T_SVC")"
# the trace view last, not waited for: it listens some 5-15 s later (`make status` shows it)
ctl start zipkin >/dev/null 2>&1 &

# ------------------------------------------------------------------ report
infra_ok=0
infra_status="$(ctl status 'infra:*' 2>&1 || true)"
if grep -v ' RUNNING ' <<<"$infra_status" >&2; then infra_ok=1; fi

echo
echo "  front door       http://127.0.0.1:$FRONT_PORT   (/api/health /api/system/status /api/flags /ofrep /api/incidents /status /api/recovery /api/sla)"
while read -r name pvar hpath cmd; do printf '  %-16s http://127.0.0.1:%s\n' "$name" "${!pvar}"; done < <(programs)
echo "  demo app         http://127.0.0.1:$DEMO_PORT   (blue :$DEMO_BLUE_PORT, green :$DEMO_GREEN_PORT; safeguard deploy|switch)"
echo "  node demo app    http://127.0.0.1:$NODE_DEMO_PORT   (blue :$NODE_BLUE_PORT, green :$NODE_GREEN_PORT; examples/demo-node)"
echo "  kafka            127.0.0.1:$KAFKA_PORT   (SASL $KAFKA_SASL_MECHANISM + ACLs; principals $KAFKA_PRINCIPALS)"
echo "  postgres         postgresql://$POSTGRES_USER@127.0.0.1:$POSTGRES_PORT/$POSTGRES_DB"
echo "  redis            redis://127.0.0.1:$REDIS_PORT/0"
echo "  traces (zipkin)  http://127.0.0.1:$ZIPKIN_PORT/zipkin/   (starting in the background)"
echo "  haproxy admin    $HAPROXY_SOCK"
echo "  admin token      $STACK/admin-token  (Authorization: Bearer \$(cat .stack/admin-token))"
echo "  credentials      $SECRETS/  (mode 600; the admin's are in $ENV_FILE)"
echo "  env / logs       $ENV_FILE   $LOGS/  (make logs, make status)"
echo
if [ "${#cold[@]}" -gt 0 ]; then mode="cold: $(IFS=,; echo "${cold[*]}" | sed 's/,/, /g')"; else mode="warm"; fi
log "timings: total $(elapsed "$T0")s [$mode]; kafka ready ${KAFKA_SECS}s after start; Safeguard programs settled in ${SVC_SECS}s"

[ "$infra_ok" = 0 ] || die "some infrastructure program is not RUNNING (above)"
[ "$svc_ok" = 0 ] || die "some Safeguard program is not RUNNING/healthy (above); logs in $LOGS/<name>.log"
log "stack is up"
