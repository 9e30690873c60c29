"""Settings shared by the services; each service adds its own `<Service>Settings`.

Defaults are those of the native stack (`make up`), so a service started by hand on a
developer machine finds Kafka, Postgres and Redis without any environment.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KafkaSettings", "PostgresSettings", "RedisSettings", "TelemetrySettings", "HttpSettings", "ServiceSettings"]


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "safeguard"
    topic_prefix: str = Field(default="", description="Prepended to every topic name, e.g. 'staging.'.")
    consumer_max_retries: int = Field(default=3, ge=0, description="Handler attempts before the DLQ.")
    consumer_retry_backoff_s: float = Field(default=0.2, ge=0)
    sasl_username: str | None = Field(default=None, description="SCRAM principal; None: no SASL (PLAINTEXT).")
    sasl_password: SecretStr | None = None
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] | None = Field(
        default=None, description="None: SASL_PLAINTEXT with a username, else PLAINTEXT.")

    def client_kwargs(self) -> dict[str, Any]:
        """What every aiokafka client (producer, consumer, admin) needs to reach and log in to the broker."""
        protocol = self.security_protocol or ("SASL_PLAINTEXT" if self.sasl_username else "PLAINTEXT")
        kwargs: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers, "security_protocol": protocol}
        if protocol.startswith("SASL"):
            kwargs |= {"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.sasl_username,
                       "sasl_plain_password": self.sasl_password.get_secret_value() if self.sasl_password else None}
        return kwargs


class PostgresSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSTGRES_", extra="ignore")
    dsn: SecretStr = SecretStr("postgresql://safeguard@127.0.0.1:5432/safeguard")  # the password: .stack/env
    min_size: int = 1
    max_size: int = 10
    command_timeout_s: float = 5.0


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REDIS_", extra="ignore")
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")


class TelemetrySettings(BaseSettings):
    """OpenTelemetry export. With no endpoint, spans are still made (trace ids in logs) but not exported."""

    model_config = SettingsConfigDict(env_prefix="OTEL_", extra="ignore")
    exporter_otlp_endpoint: str | None = None
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_format: str = Field(default="json", validation_alias="LOG_FORMAT")


class HttpSettings(BaseSettings):
    """Where a service listens. Subclass with the service's env prefix (FLAGS_PORT, ...)."""

    model_config = SettingsConfigDict(extra="ignore")
    host: str = "127.0.0.1"
    port: int = 8000


class ServiceSettings(HttpSettings):
    """An HTTP service that uses Kafka, Postgres and Redis. Subclass with `env_prefix` and `port`."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
