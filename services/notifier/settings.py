from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthSettings
from shared.settings import ServiceSettings

__all__ = ["NotifierSettings", "DEFAULT_POLICY"]

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "config" / "notifier.yaml"


class NotifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")
    port: int = 8005
    auth: AuthSettings = Field(default_factory=AuthSettings)
    policy_file: Path = Field(default=DEFAULT_POLICY, description="The YAML policy (NOTIFIER_POLICY_FILE).")
    db_schema: str = Field(default="notifier", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    group_id: str = "safeguard-notifier"
    tick_interval_s: float = Field(default=1.0, gt=0, description="How often escalation timers are checked.")
