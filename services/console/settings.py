from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import HttpSettings, TelemetrySettings

__all__ = ["ConsoleSettings"]


class ConsoleSettings(HttpSettings):
    """`CONSOLE_*`. The console keeps no state of its own: every page reads the services' HTTP APIs
    (the URLs below; compose sets the container names) and every change goes through them."""

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore", env_nested_delimiter="__")
    port: int = 8007
    flags_url: str = "http://127.0.0.1:8001"
    health_url: str = "http://127.0.0.1:8002"
    sla_url: str = "http://127.0.0.1:8003"
    recovery_url: str = "http://127.0.0.1:8004"
    notifier_url: str = "http://127.0.0.1:8005"
    trace_url: str = Field(default="http://127.0.0.1:9411/zipkin/traces/{trace_id}", description=(
        "Where an incident's trace opens in a browser; {trace_id} is replaced."))
    upstream_timeout_s: float = Field(default=3.0, gt=0, le=30)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
