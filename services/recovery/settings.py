from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthSettings
from shared.settings import ServiceSettings

__all__ = ["RecoverySettings", "DEFAULT_POLICY"]

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "config" / "recovery.yaml"


class RecoverySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECOVERY_", extra="ignore")
    port: int = 8004
    auth: AuthSettings = Field(default_factory=AuthSettings)
    policy_file: Path = Field(default=DEFAULT_POLICY, description="The YAML policy (RECOVERY_POLICY_FILE).")
    flags_url: str = Field(default="http://127.0.0.1:8001", description="Where the flags API answers.")
    db_schema: str = Field(default="recovery", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    group_id: str = "safeguard-recovery"
    tick_interval_s: float = Field(default=1.0, gt=0, description="How often verify windows are checked.")
