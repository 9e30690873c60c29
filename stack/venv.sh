#!/usr/bin/env bash
# `make venv`: creates .venv with Python 3.11 and installs the project with its dev extras.
# On a fresh Debian machine (as root) installs python3.11 / its venv module with apt first.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
cd "$ROOT"
find_python() {
  local c
  for c in "${PYTHON:-}" python3.11 python3; do
    [ -n "$c" ] && command -v "$c" >/dev/null || continue
    "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && { command -v "$c"; return 0; }
  done
  return 1
}
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  echo "[venv] installing $* with apt" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [ ! -x .venv/bin/python ]; then
  py="$(find_python)" || { apt_install python3.11 python3.11-venv && py="$(find_python)"; } ||
    { echo "[venv] Python 3.11 not found (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
  if ! "$py" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    apt_install python3.11-venv || { echo "[venv] '$py -m venv' failed: install python3.11-venv" >&2; exit 1; }
    "$py" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
