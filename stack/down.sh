#!/usr/bin/env bash
# Stops exactly what `make up` started: our supervisord (and with it every program), then
# any leftover process carrying our owner mark (e.g. after supervisord was killed -9).
# Fine when nothing runs.
set -euo pipefail
# shellcheck source=stack/lib.sh
. "$(dirname "$0")/lib.sh"

wait_gone() {  # wait_gone <seconds> <pid>...
  local deadline=$(( $(date +%s) + $1 )); shift
  while :; do
    local alive=()
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
    [ "${#alive[@]}" -eq 0 ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && { echo "${alive[*]}"; return 1; }
    sleep 0.2
  done
}

T0=$(now)
did=0
if pid="$(supervisor_pid)"; then
  did=1
  # the blue/green weights `safeguard deploy/switch` set: HAProxy loads them back at the next start
  [ ! -S "$RUN/haproxy.sock" ] || "$VENV/bin/python" "$STACK_SRC/stackutil.py" haproxy-save-state \
    "$RUN/haproxy.sock" "$STACK/haproxy.state" 2>/dev/null || true
  log "stopping supervisord (pid $pid) and all its programs ..."
  if [ -x "$VENV/bin/supervisorctl" ] && ctl shutdown >/dev/null 2>&1; then :; else kill -TERM "$pid" 2>/dev/null || true; fi
  if ! wait_gone 120 "$pid" >/dev/null; then
    warn "supervisord (pid $pid) did not exit in 120 s: killing it"; kill -KILL "$pid" 2>/dev/null || true
    wait_gone 10 "$pid" >/dev/null || true
  fi
fi

# leftovers carrying our mark: signal only the top of each process tree
mapfile -t left < <(our_pids)
if [ "${#left[@]}" -gt 0 ]; then
  did=1
  tops=()
  for p in "${left[@]}"; do
    pp="$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || echo 0)"
    printf '%s\n' "${left[@]}" | grep -qx "$pp" || tops+=("$p")
  done
  warn "stopping leftover processes of this stack: $(for p in "${tops[@]}"; do printf '%s(%s) ' "$p" "$(tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline" | cut -c1-60)"; done)"
  for p in "${tops[@]}"; do
    # postgres: fast shutdown is SIGINT
    if grep -q "postgres" "/proc/$p/comm" 2>/dev/null; then kill -INT "$p" 2>/dev/null || true; else kill -TERM "$p" 2>/dev/null || true; fi
  done
  if still="$(wait_gone 30 "${left[@]}")"; then :; else
    warn "killing $still"; kill -KILL $still 2>/dev/null || true
  fi
fi
rm -f "$SUPERVISOR_SOCK" "$SUPERVISOR_PID"
if [ "$did" = 1 ]; then log "stack is down ($(elapsed "$T0")s)"; else log "stack is not running: nothing to stop"; fi
