#!/bin/sh
# Entrypoint of the safeguard image under docker-compose: loads this container's credentials
# (/run/secrets/env, written by the `secrets` one-shot, stack/compose_secrets.py) and execs the command.
set -eu
if [ -r /run/secrets/env ]; then
  set -a
  . /run/secrets/env
  set +a
else
  echo "compose-run: no /run/secrets/env (the secrets one-shot writes it); starting without credentials" >&2
fi
exec "$@"
