#!/usr/bin/env bash
# Launcher used by supervisord for the Safeguard programs:
#   stack/run.sh <name> <PORT_VAR> <command...>
# Loads .stack/env, sets PORT and SAFEGUARD_PROGRAM, logs the program in to Kafka as its own
# principal (KAFKA_SASL_USERNAME/PASSWORD: <name>, `flags` for flags-<n>, `app` for the demos;
# .stack/env holds the admin's), cds to the repo root and execs the command (supervisord's
# signals reach the program). The recovery program also loads .stack/recovery.env.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
name="$1" port_var="$2"; shift 2
set -a
# shellcheck disable=SC1091
. "$ROOT/.stack/env"
# shellcheck disable=SC1091
[ "$name" != recovery ] || [ ! -f "$ROOT/.stack/recovery.env" ] || . "$ROOT/.stack/recovery.env"   # its executor (up.sh)
set +a
export PORT="${!port_var}" SAFEGUARD_PROGRAM="$name" PATH="$ROOT/.venv/bin:$PATH" PYTHONUNBUFFERED=1
case "$name" in               # the Kafka principal (KAFKA_PRINCIPALS in stack/lib.sh); "": no Kafka client
  flags-*) principal=flags ;;  # every flags instance (flags-2, ...) logs in as flags
  demo-*) principal=app ;;     # the protected demo apps share `app`
  console) principal="" ;;
  *) principal="$name" ;;
esac
if [ -z "$principal" ]; then  # a program with no Kafka client does not get the admin's login either
  unset KAFKA_SASL_USERNAME KAFKA_SASL_PASSWORD
else
  secret_file="${SAFEGUARD_SECRETS_DIR:-$ROOT/.stack/secrets}/kafka-$principal"
  [ -s "$secret_file" ] || { echo "run.sh: no Kafka credentials for $name ($secret_file): add the principal to KAFKA_PRINCIPALS in stack/lib.sh" >&2; exit 78; }
  KAFKA_SASL_USERNAME="$principal" KAFKA_SASL_PASSWORD="$(cat "$secret_file")"
  export KAFKA_SASL_USERNAME KAFKA_SASL_PASSWORD
fi
cd "$ROOT"
exec "$@"
