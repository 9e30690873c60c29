from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthSettings
from shared.guard import GuardSettings
from shared.ratelimit import RateLimitSettings
from shared.settings import ServiceSettings

__all__ = ["FlagsSettings"]


class FlagsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FLAGS_", extra="ignore")
    port: int = 8001
    sync_port: int = Field(default=8015, ge=0, le=65535, description="flagd sync gRPC (FLAGS_SYNC_PORT), on `host`; 0: any free port.")
    auth: AuthSettings = Field(default_factory=AuthSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    rate_limit: str = Field(default="1000/second", description="Per-client limit on every request (FLAGS_RATE_LIMIT).")
    rate_limit_local: bool = Field(default=True, description="Decide rate limits in process, reconciled with Redis "
                                   "in the background: no request waits on Redis (FLAGS_RATE_LIMIT_LOCAL).")
    ofrep_trace_ratio: float = Field(default=0.01, ge=0, le=1, description="Share of OFREP evaluations traced when "
                                     "the caller sends no traceparent; a sampled traceparent is always followed.")
    ofrep_cache_entries: int = Field(default=4096, ge=0, description="OFREP answers kept for repeated contexts "
                                     "(emptied on any change and every second); 0: no cache.")
    write_limit: str = Field(default="20/second", description="Per-client limit on changes (admin + runbook).")
    db_schema: str = Field(default="flags", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    cache_prefix: str = "safeguard:flags:"
    refresh_interval_s: float = Field(default=1.0, gt=0)
    scheduler_interval_s: float = Field(default=1.0, gt=0)
    relay_interval_s: float = Field(default=2.0, gt=0)
    reconcile_interval_s: float = Field(default=2.0, gt=0)
    store_timeout_s: float = Field(default=2.0, gt=0, description="A change waits this long for Postgres; a kill "
                                   "then goes to the journal instead (FLAGS_STORE_TIMEOUT_S).")
    journal_path: str = Field(default="~/.local/state/safeguard/flags-pending-off.jsonl",
                              description="Kills accepted while Postgres is down, until reconciled (FLAGS_JOURNAL_PATH).")
    seed: bool | None = Field(default=None, description="Create `gamification` (new, off) if absent. "
                                                        "Default: on when SAFEGUARD_ENV=local.")
    max_context_bytes: int = Field(default=64 * 1024, ge=2, description="Largest OFREP request body (context).")
    max_context_depth: int = Field(default=16, ge=1, description="Deepest nesting inside an evaluation context.")
    sse_max_subscribers: int = Field(default=1024, ge=1, description="SSE streams open at once (then 503).")
    sse_max_per_client: int = Field(default=64, ge=1, description="SSE streams per client key or address (then 429).")
