#!/bin/sh
# Entrypoint of the redis:7.0 stand-in, as the official image: options alone -> redis-server;
# drops root to the redis user; protected mode off (containers reach it over their network).
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  chown -R redis:redis /data 2>/dev/null || true
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = redis-server ]; then
  shift
  case " $* " in *" --protected-mode "*) ;; *) set -- --protected-mode no "$@" ;; esac
  set -- redis-server "$@"
fi
exec "$@"
