#!/usr/bin/env bash
# Renders stack/haproxy.compose.cfg (committed, used by docker-compose.yml) from the same
# template as the native stack, so the two front doors cannot drift.
#   stack/gen-compose-haproxy.sh          rewrite the file
#   stack/gen-compose-haproxy.sh --check  exit 1 if the committed file is stale
set -euo pipefail
# shellcheck source=stack/lib.sh
. "$(dirname "$0")/lib.sh"
# In compose every container listens on the default port; only host publishing changes.
# the runtime API twice: on TCP for the traffic switch from the host (docker-compose.yml publishes
# :9999 on 127.0.0.1 only; `[traffic] socket = "tcp:127.0.0.1:9999"`), and the unix socket inside
HAPROXY_SOCK=$'ipv4@0.0.0.0:9999 level admin\n    stats socket /var/lib/haproxy/admin.sock'
HAPROXY_STATE=/var/lib/haproxy/server-state  # absent in a fresh container: HAProxy starts from the config
HAPROXY_RESOLVERS=$'\nresolvers docker\n    nameserver dns 127.0.0.11:53\n    hold valid 5s\n'
HAPROXY_SERVER_OPTS="resolvers docker init-addr last,libc,none"
FRONT_BIND=":3000"
DEMO_BIND=":8100"
FLAGS_ADDR=flags:8001 FLAGS_2_ADDR=flags-2:8001 HEALTH_ADDR=health:8002 SLA_ADDR=sla:8003
FLAGS_SYNC_BIND=":8015" FLAGS_SYNC_1_ADDR=flags:8015 FLAGS_SYNC_2_ADDR=flags-2:8015 FLAGS_1_HTTP_PORT=8001 FLAGS_2_HTTP_PORT=8001
RECOVERY_ADDR=recovery:8004 NOTIFIER_ADDR=notifier:8005
DEMO_BLUE_ADDR=demo-blue:8101 DEMO_GREEN_ADDR=demo-green:8102
CONSOLE_ADDR=console:8007 INTAKE_ADDR=intake:8006 OTLP_BIND=":4318" OTLP_TRACES_ADDR=intake:8006
NODE_DEMO_BIND=":8200" NODE_BLUE_ADDR=demo-node-blue:8201 NODE_GREEN_ADDR=demo-node-green:8202
out="$STACK_SRC/haproxy.compose.cfg"
if [ "${1:-}" = --check ]; then
  tmp="$(mktemp)"; trap 'rm -f "$tmp" "$tmp.tmp"' EXIT
  render "$STACK_SRC/haproxy.cfg.in" "$tmp" || true
  if ! cmp -s "$tmp" "$out"; then
    echo "stack/haproxy.compose.cfg is stale: run stack/gen-compose-haproxy.sh" >&2; exit 1
  fi
  echo "stack/haproxy.compose.cfg is up to date"
else
  render "$STACK_SRC/haproxy.cfg.in" "$out" && echo "wrote $out" || echo "$out unchanged"
fi
