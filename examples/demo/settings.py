from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, PositiveFloat
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth import AuthSettings
from shared.guard import GuardSettings
from shared.ratelimit import RateLimitSettings
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings, TelemetrySettings

__all__ = ["DemoSettings"]


class DemoSettings(BaseSettings):
    """`DEMO_*`; the port from `PORT` (what the native stack sets per program) or `DEMO_APP_PORT`
    (`DEMO_PORT` is the HAProxy front of blue/green, :8100)."""

    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", populate_by_name=True)
    color: Literal["blue", "green"] = "blue"
    version: Literal["v1", "v2"] = Field(default="v1", description="The release this instance runs (DEMO_VERSION).")
    release_dir: Path | None = Field(default=None, description="`safeguard deploy` writes `demo-<color>` here with the "
                                                             "version to run; it wins over DEMO_VERSION.")
    host: str = "127.0.0.1"
    port: int = Field(default=8101, validation_alias=AliasChoices("PORT", "DEMO_APP_PORT"))
    service: str = "demo"
    flags_url: str = Field(default="http://127.0.0.1:8001", description="OFREP base URL of the flags service.")
    flag_source: Literal["sdk", "ofrep"] = Field(default="sdk", description="sdk.flags client, or plain OFREP.")
    flag_cache_s: float = Field(default=0.5, ge=0, description="How long one flag answer is reused.")
    memory_limit_mb: PositiveFloat = Field(default=512, description="'Memory > 90 %' is measured against this.")
    stats_interval_s: PositiveFloat = 5.0
    commands: bool = Field(default=True, description="Listen on recovery.commands.")
    db_breaker_min_calls: int = Field(default=10, ge=1, description=(
        "Calls in the database breaker's 10 s window before its own rates count (resilience4j "
        "minimumNumberOfCalls); a high value leaves slowness to latency_high and recovery."))
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)

    @property
    def release(self) -> str:
        """The version to run: what `safeguard deploy` wrote for this colour, else `version`."""
        chosen = self.release_dir / f"{self.service}-{self.color}" if self.release_dir else None
        if chosen is not None and chosen.is_file():
            text = chosen.read_text().strip()
            if text in ("v1", "v2"):
                return text
        return self.version

    @property
    def instance(self) -> str:
        return f"{self.service}-{self.color}"
