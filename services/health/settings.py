from __future__ import annotations

from pathlib import Path

from pydantic import Field, PositiveFloat
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

__all__ = ["HealthSettings"]


class HealthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HEALTH_", extra="ignore")
    port: int = 8002
    config_path: Path = Field(default=Path("config/health.yaml"), description="Probe targets (HEALTH_CONFIG_PATH).")
    interval_seconds: PositiveFloat | None = Field(default=None, description="Overrides the file's interval.")
    status_feed: bool = Field(default=True, description="Consume topics for /api/system/status.")
    instance_stale_seconds: PositiveFloat = 30.0
