"""What Safeguard needs to know to deploy and check one protected app: `<app dir>/safeguard.toml`.

`safeguard ... --app demo` reads `examples/demo/safeguard.toml`; `--app PATH` reads that file. Values
may name environment variables with defaults, `${DEMO_BLUE_PORT:-8101}` (`.stack/env` is read too),
so one file serves the native stack, compose and tests on offset ports.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

__all__ = ["AppSpec", "Colour", "FlagProbe", "load_app"]

ROOT = Path(__file__).resolve().parent.parent
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


@dataclass(frozen=True, kw_only=True)
class Colour:
    name: str
    url: str
    program: str


@dataclass(frozen=True, kw_only=True)
class FlagProbe:
    """Turn `flag` on for the probe user only, request `path`, expect `on`; off again, expect `off`."""

    flag: str
    path: str
    on: int = 200
    off: int = 404


@dataclass(frozen=True, kw_only=True)
class AppSpec:
    name: str
    source: Path
    schema: str
    migrations: Path
    url: str
    health: str = "/healthz"
    colours: dict[str, Colour] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    verify_sql: list[str] = field(default_factory=list)
    previous_sql: Path | None = None
    preflight: dict[str, Any] = field(default_factory=dict)
    probes: list[FlagProbe] = field(default_factory=list)
    instances: dict[str, Any] = field(default_factory=dict)  # [instances] kind = "supervisord" | "docker"


def _expand(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: _expand(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env) for v in value]
    return value


def _environment() -> dict[str, str]:
    stack = {k: v for k, v in dotenv_values(ROOT / ".stack" / "env").items() if v is not None}
    return {**stack, **os.environ}


def load_app(app: str = "demo") -> AppSpec:
    """`demo` -> examples/demo/safeguard.toml; anything with a `/` or ending `.toml` is a path."""
    path = Path(app) if ("/" in app or app.endswith(".toml")) else ROOT / "examples" / app / "safeguard.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no app description {path} (--app NAME reads examples/NAME/safeguard.toml)")
    raw = _expand(tomllib.loads(path.read_text()), _environment())
    here = path.parent
    rehearse = raw.get("rehearse", {})
    preflight = raw.get("preflight", {})
    return AppSpec(
        name=raw["name"], source=path, schema=raw.get("schema", raw["name"]),
        migrations=here / raw.get("migrations", "migrations"), url=raw["url"].rstrip("/"),
        health=raw.get("health", "/healthz"),
        colours={n: Colour(name=n, url=c["url"].rstrip("/"), program=c.get("program", f"{raw['name']}-{n}"))
                 for n, c in raw.get("colours", {}).items()},
        traffic=raw.get("traffic", {}), releases=raw.get("releases", {}),
        verify_sql=list(rehearse.get("verify", [])),
        previous_sql=here / rehearse["previous"] if rehearse.get("previous") else None,
        preflight={k: v for k, v in preflight.items() if k != "flags"},
        probes=[FlagProbe(flag=k, **v) for k, v in preflight.get("flags", {}).items()],
        instances=raw.get("instances", {}),
    )
