#!/usr/bin/env bash
# Installs what the native stack needs and is missing (idempotent, quick when all present):
#   apt: java, redis-server, haproxy, postgresql-15, nodejs/npm (maven only when the Kafka or Zipkin jars are missing)
#        -- installed without letting apt start any system service;
#   Kafka jars from Maven Central into .stack/kafka/lib (stack/kafka/pom.xml), once;
#   the Zipkin server's jar (the trace view) into .stack/zipkin (stack/zipkin/pom.xml), once;
#   the Node demo's npm packages (npm ci in examples/demo-node) when its lock file changed.
set -euo pipefail
# shellcheck source=stack/lib.sh
. "$(dirname "$0")/lib.sh"

LIB="$STACK/kafka/lib"
POM="$STACK_SRC/kafka/pom.xml"
pom_sum="$(sha256sum "$POM" | cut -d' ' -f1)"
need_jars=0
[ "$(cat "$LIB/.pom.sha256" 2>/dev/null)" = "$pom_sum" ] || need_jars=1
ZIPKIN_DIR="$STACK/zipkin"
need_zipkin=0
if [ "$(cat "$ZIPKIN_DIR/.pom.sha256" 2>/dev/null)" != "$(sha256sum "$STACK_SRC/zipkin/pom.xml" | cut -d' ' -f1)" ] ||
   [ ! -s "$ZIPKIN_DIR/zipkin-server-exec.jar" ]; then need_zipkin=1; fi

pkgs=()
command -v java >/dev/null         || pkgs+=(openjdk-17-jre-headless)
command -v redis-server >/dev/null || pkgs+=(redis-server)
command -v haproxy >/dev/null      || pkgs+=(haproxy)
[ -x "$PG_BIN/postgres" ]          || pkgs+=(postgresql-15)
command -v npm >/dev/null          || pkgs+=(nodejs npm)
[ -x /usr/bin/chromium ]           || pkgs+=(chromium)   # headless, for the page-load test (tests/e2e/test_node_demo.py)
if [ "$need_jars$need_zipkin" != 00 ] && ! command -v mvn >/dev/null; then pkgs+=(maven); fi

if [ "${#pkgs[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing packages: ${pkgs[*]} -- install them (apt-get install ${pkgs[*]}) or run as root"
  log "installing with apt: ${pkgs[*]}"
  # never let the packages start system services (redis, haproxy, the postgres 'main' cluster)
  policy=/usr/sbin/policy-rc.d; own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; own_policy=1
  fi
  cleanup_policy() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
  trap cleanup_policy EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  cleanup_policy; trap - EXIT
  # belt and braces: stop anything the packages may have started anyway
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | awk '$4 == "online" {print $1, $2}' | while read -r v c; do
      warn "stopping system postgres cluster $v/$c started by apt"; pg_ctlcluster "$v" "$c" stop || true
    done
  fi
  for svc in redis-server haproxy; do
    if command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
      warn "stopping system service $svc started by apt"; service "$svc" stop || true
    fi
  done
fi

if [ "$need_jars" = 1 ]; then
  log "fetching Kafka jars from Maven Central (stack/kafka/pom.xml) ..."
  t=$(now)
  rm -rf "$LIB.tmp"; mkdir -p "$LIB.tmp"
  mkdir -p "$LOGS"
  mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIB.tmp" \
      >"$LOGS/mvn.log" 2>&1 || { tail -n 40 "$LOGS/mvn.log" >&2; die "mvn could not fetch the Kafka jars (log: $LOGS/mvn.log)"; }
  echo "$pom_sum" > "$LIB.tmp/.pom.sha256"
  rm -rf "$LIB"; mv "$LIB.tmp" "$LIB"
  rm -f "$STACK/kafka/kafka.jsa"   # class data sharing archive of the old jars
  log "fetched $(ls "$LIB"/*.jar | wc -l) jars in $(elapsed "$t")s"
fi

if [ "$need_zipkin" = 1 ]; then
  log "fetching the Zipkin server jar from Maven Central (stack/zipkin/pom.xml, ~131 MB) ..."
  t=$(now)
  "$STACK_SRC/zipkin/fetch.sh" "$ZIPKIN_DIR" >/dev/null || die "could not fetch the Zipkin server jar"
  log "fetched the Zipkin server jar in $(elapsed "$t")s"
fi

# The Node demo's packages (examples/demo-node/package-lock.json), again whenever the lock file changes
NODE_APP="$ROOT/examples/demo-node"
lock_sum="$(sha256sum "$NODE_APP/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$NODE_APP/node_modules/.lock.sha256" 2>/dev/null)" != "$lock_sum" ]; then
  log "installing the Node demo's packages (npm ci in examples/demo-node) ..."
  t=$(now)
  mkdir -p "$LOGS"
  (cd "$NODE_APP" && npm ci --no-audit --no-fund --omit=dev) >"$LOGS/npm.log" 2>&1 ||
    { tail -n 40 "$LOGS/npm.log" >&2; die "npm ci failed in examples/demo-node (log: $LOGS/npm.log)"; }
  echo "$lock_sum" > "$NODE_APP/node_modules/.lock.sha256"
  log "installed the Node demo's packages in $(elapsed "$t")s"
fi
