from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import HttpSettings, KafkaSettings, TelemetrySettings

__all__ = ["SlaSettings"]


class SlaSettings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore")
    port: int = 8003
    app_id: str = "safeguard-sla"
    data_dir: str = ".stack/sla"
    policy_file: str | None = Field(default="config/sla.yaml", description="SLA policy YAML; empty for the defaults.")
    web_enabled: bool = True
    partitions: int = Field(default=3, ge=1, description="Partitions of every input topic and table (a service's records and state share one partition number); more lets more workers share the load.")
    batch_size: int = Field(default=1000, ge=1, description="Records per batch at most (one changelog write per changed key per batch).")
    batch_within: float = Field(default=0.25, gt=0, description="Seconds a batch waits for more records (adds at most this to detection).")
    publish_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for the broker's ack of a trigger, a report or a dead letter.")
    stall_after: float = Field(default=30.0, gt=0, description="Seconds one batch may wait for the broker's acks before /healthz answers 503 (the health service's watchdog then restarts the worker); one health-check interval.")
    republish_every: float = Field(default=1.0, gt=0, description="Seconds between retries of trigger events not yet published.")
    tick_every: float = Field(default=1.0, gt=0, description="Seconds between evaluations on the clock (windows age out without new data).")
    tick_idle: float = Field(default=3.0, gt=0, description="Seconds without a service's records before the clock evaluates its triggers.")
    rearm_on_flags: bool = Field(default=True, description="Read flags.changes: a new feature turned on during a firing error-rate episode re-arms it (the sla principal needs READ on flags.changes).")
    maintenance_from_notifier: bool = Field(default=True, description="Read maintenance.windows: the windows scheduled through the notifier's API leave their services out of the budgets, like the static ones of the policy (the sla principal needs READ on maintenance.windows).")
    group_instance_id: str | None = Field(default=None, description="Kafka static membership (KIP-345): a worker restarted with the same id (kill -9, then its supervisor) gets its partitions back when it rejoins, not after the session timeout. One id per worker process, never shared by two running workers: the stack sets it per program, not in the shared environment.")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
