from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import HttpSettings, KafkaSettings, PostgresSettings, RedisSettings, TelemetrySettings

__all__ = ["HealthSettings"]


class HealthSettings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="HEALTH_", extra="ignore")
    port: int = 8002
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
