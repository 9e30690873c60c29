from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.ratelimit import RateLimitSettings
from shared.settings import ServiceSettings

__all__ = ["IntakeSettings"]

# the local stack's pages: front door, the demos' fronts and their blue/green instances
_LOCAL_PAGES = [f"http://{host}:{port}" for host in ("127.0.0.1", "localhost")
                for port in (3000, 8100, 8101, 8102, 8200, 8201, 8202)]


class IntakeSettings(ServiceSettings):
    """`INTAKE_*`; lists and maps as JSON (`INTAKE_BEACON_ORIGINS='["https://shop.example.com"]'`)."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")
    port: int = 8006
    grpc_port: int | None = Field(default=None, ge=0, le=65535, description=(
        "OTLP/gRPC (MetricsService) on host:grpc_port; None: not served."))
    max_otlp_bytes: int = Field(default=4 * 1024 * 1024, ge=1024,
                                description="Largest OTLP body, compressed or not (413 past it).")
    max_series: int = Field(default=100_000, ge=1, description="Cumulative series remembered (least recent dropped).")
    first_window_s: float = Field(default=120.0, gt=0, description=(
        "A cumulative series seen for the first time counts as a delta only when it started at most this long "
        "ago; an older one (the intake restarted, the app did not) only sets the baseline."))
    report_window_s: float = Field(default=1.0, gt=0, le=60, description=(
        "A RequestsObserved covers this much before the export's end, whatever the export interval (the SLA "
        "processor counts a report in the second it starts and judges the last seconds)."))
    memory_limits: dict[str, int] = Field(default_factory=dict, description=(
        "Memory limit in bytes per service.name, for apps that send usage without process.memory.limit."))
    default_memory_limit_bytes: int | None = Field(default=None, gt=0, description="None: this host's RAM.")
    beacon_origins: list[str] = Field(default_factory=lambda: list(_LOCAL_PAGES), description=(
        "Pages (scheme://host[:port]) whose browsers may post beacons; a request with another Origin is 403."))
    beacon_max_bytes: int = Field(default=4096, ge=256)
    beacon_rate: str = Field(default="60/minute", description="Beacons per client address (a `limits` string).")
    beacon_max_ms: float = Field(default=600_000.0, gt=0, description="Timings above this are refused (422).")
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
