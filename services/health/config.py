"""`config/health.yaml`: probe targets and hysteresis, validated at start with `shared.policy`
like every service's policy file.

A bad file stops the service with a message naming the field (`targets[2].url: ...`).
Strings may use `${VAR}` / `${VAR:-default}` so ports follow the environment. Secrets
(DSNs, Redis URLs) are never written here: `dsn_env` / `url_env` name the variable to read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, ValidationError, ValidationInfo, model_validator

from shared.policy import PolicyError, PositiveDuration, Strict, load_yaml

__all__ = ["HealthConfig", "Target", "HttpTarget", "TcpTarget", "PostgresTarget", "RedisTarget", "KafkaTarget",
           "ProcessTarget", "ConfigError", "load_config", "parse_config"]

Role = Literal["service", "dependency"]


class ConfigError(PolicyError):
    """The health config is invalid; the message names the file and field."""


class _Target(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    service: str = Field(default="", description="Service the target belongs to; default: the name.")
    critical: bool = Field(default=True, description="Down -> overall fail (else warn).")
    watchdog: bool = Field(default=False, description="Down -> an `unresponsive` trigger on sla.triggers (one of "
                                                      "Safeguard's own processors hung: services/health/watchdog.py).")
    role: Role | None = None
    warn_latency_ms: PositiveFloat | None = None
    timeout_seconds: PositiveDuration | None = None

    @model_validator(mode="after")
    def _defaults(self) -> _Target:
        if not self.service:
            object.__setattr__(self, "service", self.name)
        if self.role is None:
            object.__setattr__(self, "role", "service" if self.kind in ("http", "process") else "dependency")  # type: ignore[attr-defined]
        return self


class HttpTarget(_Target):
    kind: Literal["http"]
    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    body_contains: str | None = None
    json_field: str | None = Field(default=None, description="Dotted path in a JSON body, e.g. status.")
    json_equals: Any = None


class TcpTarget(_Target):
    kind: Literal["tcp"]
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)


class PostgresTarget(_Target):
    kind: Literal["postgres"]
    dsn_env: str | None = Field(default=None, description="Env var with the DSN; default: POSTGRES_DSN.")
    query: str = "SELECT 1"


class RedisTarget(_Target):
    kind: Literal["redis"]
    url_env: str | None = Field(default=None, description="Env var with the URL; default: REDIS_URL.")


class KafkaTarget(_Target):
    kind: Literal["kafka"]
    bootstrap_servers: str | None = None


class ProcessTarget(_Target):
    kind: Literal["process"]
    cmdline_contains: str = Field(min_length=1)
    max_memory_percent: float = Field(default=90.0, gt=0, le=100)


Target = Annotated[HttpTarget | TcpTarget | PostgresTarget | RedisTarget | KafkaTarget | ProcessTarget,
                   Field(discriminator="kind")]


class HealthConfig(Strict):
    """`${VAR}` in a string is replaced first: from `env` in the validation context (tests), else os.environ."""

    interval_seconds: PositiveDuration = 30.0
    timeout_seconds: PositiveDuration = 5.0
    down_after: PositiveInt = Field(default=3, description="N consecutive failures -> down.")
    up_after: PositiveInt = Field(default=2, description="M consecutive successes -> up.")
    settle_interval_seconds: PositiveDuration = Field(
        default=1.0, description="Re-probe interval of a target with no verdict yet (or down, never seen up).")
    max_concurrency: PositiveInt = 50
    targets: list[Target] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _expand_variables(cls, raw: Any, info: ValidationInfo) -> Any:
        env = (info.context or {}).get("env")
        return _expand(raw, os.environ if env is None else env)

    @model_validator(mode="after")
    def _unique_names(self) -> HealthConfig:
        seen: set[str] = set()
        for t in self.targets:
            if t.name in seen:
                raise ValueError(f"duplicate target name {t.name!r}")
            seen.add(t.name)
        return self


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, list):
        return [_expand(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, env) for k, v in value.items()}
    return value


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("http", "tcp", "postgres", "redis", "kafka", "process"):
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())


def parse_config(raw: Any, *, source: str = "config", env: dict[str, str] | None = None) -> HealthConfig:
    """`raw` (a parsed YAML document) as a config; `env` replaces os.environ for `${VAR}`."""
    try:
        return HealthConfig.model_validate(raw, context={"env": env})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_problems(exc)}") from None


def load_config(path: Path) -> HealthConfig:
    """Read and validate `path` with `shared.policy.load_yaml`; `ConfigError` (a `PolicyError`) names the field."""
    try:
        return load_yaml(path, HealthConfig, what="health config")
    except PolicyError as exc:
        if isinstance(exc.__cause__, ValidationError):  # field paths without the target's kind tag
            raise ConfigError(f"{path}: {_problems(exc.__cause__)}") from None
        raise ConfigError(str(exc)) from None
