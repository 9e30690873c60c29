#!/usr/bin/env bash
# `make clean`: stop the stack, then remove everything in .stack/ except the cached Kafka jars.
set -euo pipefail
# shellcheck source=stack/lib.sh
. "$(dirname "$0")/lib.sh"
"$STACK_SRC/down.sh"
[ -d "$STACK" ] || exit 0
# Postgres data may live outside the checkout (see up.sh): remove its target too
if [ -L "$STACK/pg" ]; then target="$(readlink -f "$STACK/pg")"; case "$target" in /var/tmp/safeguard-pg-*) rm -rf "$target" ;; esac; fi
case "$RUN" in /tmp/safeguard-run-*) rm -rf "$RUN" ;; esac
find "$STACK" -mindepth 1 -maxdepth 1 ! -name kafka ! -name zipkin -exec rm -rf {} +
[ ! -d "$STACK/kafka" ] || find "$STACK/kafka" -mindepth 1 -maxdepth 1 ! -name lib -exec rm -rf {} +
log "removed .stack data (kept the cached Kafka jars in .stack/kafka/lib and the Zipkin jar in .stack/zipkin)"
