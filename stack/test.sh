#!/usr/bin/env bash
# `make test` (and CI via .ci/run): runs the test suite against real infrastructure.
#   - KAFKA_BOOTSTRAP_SERVERS, POSTGRES_DSN and REDIS_URL all set: use them, start nothing.
#   - otherwise: start the whole native stack (stack/up.sh; e2e tests go through :3000),
#     and stop it afterwards only if this script started it.
# Extra arguments go to pytest. Exit status is pytest's; "no tests collected" (5) fails.
set -euo pipefail
# shellcheck source=stack/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

make -s venv

started=0
use_stack=1
if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && [ -n "${POSTGRES_DSN:-}" ] && [ -n "${REDIS_URL:-}" ]; then
  use_stack=0
  log "using KAFKA_BOOTSTRAP_SERVERS/POSTGRES_DSN/REDIS_URL from the environment: starting nothing"
elif supervisor_pid >/dev/null; then
  log "the native stack is already running: using it (it stays running)"
else
  started=1
fi

show_logs() {
  [ "$use_stack" = 1 ] && [ -d "$LOGS" ] || return 0
  local f
  for f in "$LOGS"/*.log; do
    [ -s "$f" ] || continue
    echo "----- tail of ${f#"$ROOT"/}"
    tail -n "${LOG_TAIL:-40}" "$f"
  done >&2
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$started" = 1 ]; then "$STACK_SRC/down.sh" || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$use_stack" = 1 ]; then
  if ! "$STACK_SRC/up.sh"; then
    show_logs
    die "the stack did not come up: not running the tests"
  fi
  set -a
  # shellcheck disable=SC1091
  . "$ENV_FILE"
  set +a
fi
export KAFKA_BOOTSTRAP_SERVERS POSTGRES_DSN REDIS_URL

# pytest's output is kept too: on a failure the stack's log tails are printed, and after them pytest's
# short summary again, so the last lines of a CI log name the failing tests.
mkdir -p "$STACK"
out="$STACK/pytest.out"
set +e
"$PY" -m pytest -q tests "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 5 ]; then
  warn "pytest collected no tests: that is a failure"
  rc=1
fi
if [ "$rc" != 0 ]; then
  show_logs
  echo "----- pytest's summary again (all of it: $out)" >&2
  sed -n '/short test summary info/,$p' "$out" | tail -n 60 >&2
fi
exit "$rc"
