#!/usr/bin/env bash
# What `make bench` uses besides the venv and the stack: wrk, the load generator of bench/ofrep_speed.py (issue 12
# measured flagd with it: `wrk -t2 -c16`). Installed with apt when missing and we are root; otherwise the bench
# falls back to its Python keep-alive client (slower, so the OFREP figures are lower), and this says so.
set -euo pipefail
command -v wrk >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[bench] installing wrk with apt" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
  command -v wrk >/dev/null && exit 0
fi
echo "[bench] wrk is not installed (apt-get install wrk): bench/ofrep_speed.py uses its Python client" >&2
