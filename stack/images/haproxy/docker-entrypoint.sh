#!/bin/sh
# Entrypoint of the haproxy:2.6 stand-in, as the official image: options alone -> haproxy;
# master-worker mode, logs to stdout (-W -db).
set -e
case "$1" in -*) set -- haproxy "$@" ;; esac
if [ "$1" = haproxy ]; then shift; set -- haproxy -W -db "$@"; fi
exec "$@"
