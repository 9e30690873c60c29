"""The `secrets` one-shot of docker-compose.yml: makes the stack's credentials on first start.

Run as root in the safeguard image with one named volume per consumer mounted under /secrets:
  kafka/      kafka-<principal> for every principal (the broker formats its SCRAM users from them)
  postgres/   postgres-password (POSTGRES_PASSWORD_FILE of the postgres image)
  <service>/  env: that container's own KAFKA_SASL_USERNAME/PASSWORD, POSTGRES_DSN and
              SAFEGUARD_ADMIN_TOKEN (stack/compose-run.sh loads it); admin/ also has admin-token
A container mounts only its own volume, so the demo app never sees another principal's password.
Values already in the volumes are kept; POSTGRES_PASSWORD / SAFEGUARD_ADMIN_TOKEN, when set, win.
Nothing secret is printed.
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from pathlib import Path
from urllib.parse import quote

ROOT = Path(os.environ.get("SECRETS_ROOT", "/secrets"))
PRINCIPALS = ("admin", "flags", "health", "sla", "recovery", "notifier", "app", "intake")
KAFKA_UID, SERVICE_UID = 1000, 10001  # appuser of the kafka image, safeguard of ours


def write(path: Path, text: str, *, uid: int | None, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    if uid is not None and os.geteuid() == 0:
        os.chown(tmp, uid, 0)
    tmp.chmod(mode)
    tmp.replace(path)


def kept(path: Path, given: str = "") -> str:
    """`given` when set, else the value already in `path`, else a new random one."""
    if given:
        return given
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    return secrets.token_urlsafe(24)


def main() -> int:
    passwords = {p: kept(ROOT / "kafka" / f"kafka-{p}") for p in PRINCIPALS}
    pg_password = kept(ROOT / "postgres" / "postgres-password", os.environ.get("POSTGRES_PASSWORD", ""))
    token = kept(ROOT / "admin" / "admin-token", os.environ.get("SAFEGUARD_ADMIN_TOKEN", ""))
    for p, value in passwords.items():
        write(ROOT / "kafka" / f"kafka-{p}", value, uid=KAFKA_UID, mode=0o400)
    write(ROOT / "postgres" / "postgres-password", pg_password, uid=None, mode=0o444)
    user, db = os.environ.get("POSTGRES_USER", "safeguard"), os.environ.get("POSTGRES_DB", "safeguard")
    dsn = f"postgresql://{quote(user, safe='')}:{quote(pg_password, safe='')}@postgres:5432/{quote(db, safe='')}"
    for principal in PRINCIPALS:  # one volume each, named after the principal (`app`: the demo)
        env = {"KAFKA_SASL_USERNAME": principal, "KAFKA_SASL_PASSWORD": passwords[principal],
               "POSTGRES_DSN": dsn, "SAFEGUARD_ADMIN_TOKEN": token}
        write(ROOT / principal / "env", "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()),
              uid=SERVICE_UID, mode=0o400)
    write(ROOT / "admin" / "admin-token", token, uid=SERVICE_UID, mode=0o400)
    print(f"secrets: Kafka SCRAM users {', '.join(PRINCIPALS)}, Postgres password, admin token in place "
          f"(one volume per container; values not shown)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
