#!/usr/bin/env bash
# Launcher used by supervisord for the Safeguard programs:
#   stack/run.sh <name> <PORT_VAR> <command...>
# Loads .stack/env, sets PORT and SAFEGUARD_PROGRAM, cds to the repo root and execs the
# command (exec: supervisord's signals reach the program itself).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
name="$1" port_var="$2"; shift 2
set -a
# shellcheck disable=SC1091
. "$ROOT/.stack/env"
set +a
export PORT="${!port_var}" SAFEGUARD_PROGRAM="$name" PATH="$ROOT/.venv/bin:$PATH" PYTHONUNBUFFERED=1
cd "$ROOT"
exec "$@"
