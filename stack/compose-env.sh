#!/usr/bin/env bash
# `stack/compose-env.sh [-p PROJECT]`: prints what `safeguard deploy | switch | rollback` need to act
# on a running compose stack, as KEY=value lines (docs/compose.md, "Blue/green deploys"):
#   set -a; . <(stack/compose-env.sh); set +a; safeguard deploy --version v2
# The host ports are asked of compose (`port`), so offset ports (compose-check) are right; the
# credentials come from the admin's secrets volume (the `topics` one-shot's /run/secrets/env): the
# Kafka admin login (canary watch, deploy events), the admin token (flags), the Postgres DSN with
# the published 127.0.0.1 port instead of postgres:5432 (migrations, backup, rehearse). Backups
# go to .stack/compose-backups, apart from the native stack's (each keeps its newest 7).
set -euo pipefail
# shellcheck source=stack/images/lib.sh
. "$(dirname "$0")/images/lib.sh"
cd "$ROOT"

PROJECT="${COMPOSE_PROJECT_NAME:-}"
while getopts p: opt; do
  case "$opt" in p) PROJECT="$OPTARG" ;; *) idie "usage: $0 [-p PROJECT]" ;; esac
done
COMPOSE="$(compose_cmd)"
dc() { $COMPOSE ${PROJECT:+-p "$PROJECT"} -f "${COMPOSE_FILE_PATH:-docker-compose.yml}" --project-directory "$ROOT" "$@"; }
port() {  # port <service> <container port>: the host port it is published on
  local where; where="$(dc port "$1" "$2" 2>/dev/null | tail -n 1)"
  [ -n "$where" ] || idie "compose service $1 publishes no port $2: is the stack up${PROJECT:+ (project $PROJECT)}?"
  echo "${where##*:}"
}

secrets="$(dc run --rm --no-deps -T --entrypoint cat topics /run/secrets/env 2>/dev/null)" \
  || idie "could not read the admin's credentials (docker compose run topics)"
value() { sed -n "s/^$1=//p" <<<"$secrets" | head -n 1 | sed "s/^'\(.*\)'\$/\1/"; }
dsn="$(value POSTGRES_DSN)"
[ -n "$dsn" ] || idie "no POSTGRES_DSN in the admin's secrets volume"
pg_port="$(port postgres 5432)"
host_dsn="${dsn/@postgres:5432\//@127.0.0.1:$pg_port/}"

cat <<EOF
SAFEGUARD_INSTANCES=docker
${PROJECT:+COMPOSE_PROJECT_NAME=$PROJECT}
HAPROXY_ADMIN_SOCKET=tcp:127.0.0.1:$(port haproxy 9999)
DEMO_PORT=$(port haproxy 8100)
DEMO_BLUE_PORT=$(port demo-blue 8101)
DEMO_GREEN_PORT=$(port demo-green 8102)
SAFEGUARD_FRONT_URL=http://127.0.0.1:$(port haproxy 3000)
SAFEGUARD_ADMIN_TOKEN=$(value SAFEGUARD_ADMIN_TOKEN)
DEPLOY_DATABASE_URL=$host_dsn
KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(port kafka 9092)
KAFKA_SASL_MECHANISM=SCRAM-SHA-512
KAFKA_SASL_USERNAME=$(value KAFKA_SASL_USERNAME)
KAFKA_SASL_PASSWORD=$(value KAFKA_SASL_PASSWORD)
DEPLOY_BACKUP_DIR=$ROOT/.stack/compose-backups
DEPLOY_STATE_DIR=$ROOT/.stack/compose-deploy-state
EOF
