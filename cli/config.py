"""Where the stack is and how to reach it: the front door URL and the admin token.

Precedence for each: the environment, then `.stack/env`, then (token only) `.stack/admin-token`.
The checkout is $SAFEGUARD_HOME, else the nearest directory above the working directory that
holds `.stack/`, else the checkout this package was installed from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_FRONT_URL", "Config", "find_home", "load_config", "read_env_file"]

DEFAULT_FRONT_URL = "http://127.0.0.1:3000"
_PACKAGE_HOME = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Config:
    home: Path
    front_url: str
    token: str | None


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines as the stack writes them (`#` comments, optional quotes, `export `)."""
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def find_home(*, environ: Mapping[str, str], cwd: Path) -> Path:
    if environ.get("SAFEGUARD_HOME"):
        return Path(environ["SAFEGUARD_HOME"])
    for d in (cwd, *cwd.parents):
        if (d / ".stack").is_dir():
            return d
    return _PACKAGE_HOME


def load_config(*, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Config:
    environ = os.environ if environ is None else environ
    home = find_home(environ=environ, cwd=cwd or Path.cwd())
    stack_env = read_env_file(home / ".stack" / "env")
    front = environ.get("SAFEGUARD_FRONT_URL") or stack_env.get("SAFEGUARD_FRONT_URL") or DEFAULT_FRONT_URL
    token = environ.get("SAFEGUARD_ADMIN_TOKEN") or stack_env.get("SAFEGUARD_ADMIN_TOKEN") or _token_file(home)
    return Config(home=home, front_url=front.rstrip("/"), token=token or None)


def _token_file(home: Path) -> str | None:
    path = home / ".stack" / "admin-token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
