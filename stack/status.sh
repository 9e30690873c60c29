#!/usr/bin/env bash
# Shows the state of the native stack (`make status`). Exit 0 when everything is RUNNING and
# healthy, 1 when something is wrong, 3 when the stack is not running.
set -euo pipefail
# shellcheck source=stack/lib.sh
. "$(dirname "$0")/lib.sh"

if ! pid="$(supervisor_pid)"; then
  log "stack is not running (make up starts it)"
  left="$(our_pids | paste -sd' ' -)"
  [ -z "$left" ] || warn "leftover processes of this stack: $left (make down stops them)"
  exit 3
fi
rc=0
log "supervisord pid $pid ($SUPERVISOR_CONF)"
ctl status || rc=1
echo
specs=()
while read -r name pvar hpath cmd; do specs+=("safeguard:$name=http://127.0.0.1:${!pvar}$hpath"); done < <(programs)
log "health of the Safeguard programs:"
"$PY" "$STACK_SRC/stackutil.py" wait-programs "$SUPERVISOR_SOCK" 0 "${specs[@]}" || rc=1
echo
log "haproxy servers (front door :$FRONT_PORT, demo :$DEMO_PORT) via $RUN/haproxy.sock:"
"$PY" "$STACK_SRC/stackutil.py" haproxy-stat "$RUN/haproxy.sock" demo || rc=1
exit "$rc"
