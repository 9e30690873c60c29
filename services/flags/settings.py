from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthSettings
from shared.ratelimit import RateLimitSettings
from shared.settings import ServiceSettings

__all__ = ["FlagsSettings"]


class FlagsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FLAGS_", extra="ignore")
    port: int = 8001
    auth: AuthSettings = Field(default_factory=AuthSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    rate_limit: str = Field(default="1000/second", description="Per-client limit on every request (FLAGS_RATE_LIMIT).")
    write_limit: str = Field(default="20/second", description="Per-client limit on changes (admin + runbook).")
    db_schema: str = Field(default="flags", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    cache_prefix: str = "safeguard:flags:"
    refresh_interval_s: float = Field(default=1.0, gt=0)
    scheduler_interval_s: float = Field(default=1.0, gt=0)
    relay_interval_s: float = Field(default=2.0, gt=0)
    seed: bool | None = Field(default=None, description="Create `gamification` (new, off) if absent. "
                                                        "Default: on when SAFEGUARD_ENV=local.")
