from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthSettings
from shared.ratelimit import RateLimitSettings
from shared.settings import ServiceSettings

__all__ = ["NotifierSettings", "SmtpSettings", "SubscriptionSettings", "DEFAULT_POLICY", "ChannelSecrets",
           "DEFAULT_ONCALL"]

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "config" / "notifier.yaml"
DEFAULT_ONCALL = Path(__file__).resolve().parents[2] / "config" / "oncall.yaml"


class ChannelSecrets(BaseModel):
    """`NOTIFIER_CHANNELS__<CHANNEL>__URL` / `__SECRET`: a channel's URL (replaces the policy's) and the
    HMAC key its webhook is signed with. Never logged."""

    url: SecretStr | None = None
    secret: SecretStr | None = None


class SmtpSettings(BaseModel):
    """`NOTIFIER_SMTP__HOST` etc. Without a host, e-mail subscriptions are refused (503)."""

    host: str | None = None
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(default="status@localhost", description="The From: address.")
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout_s: float = Field(default=10.0, gt=0)


class SubscriptionSettings(BaseModel):
    """`NOTIFIER_SUBSCRIPTIONS__*`. `public_url`: where the status page is reached (links in e-mails)."""

    public_url: str = Field(default="http://localhost:3000", pattern=r"^https?://")
    rate: str = Field(default="5/minute", description="POST /status/subscribe per caller (a `limits` string).")
    confirm_within_s: float = Field(default=48 * 3600.0, gt=0, description="How long a confirmation link works.")
    allow_private_webhooks: bool = Field(default=False, description="Webhooks to loopback / private addresses "
                                                                    "(tests, a closed network).")
    relay_interval_s: float = Field(default=1.0, gt=0, description="How often due notices are sent.")


class NotifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", env_nested_delimiter="__")
    port: int = 8005
    auth: AuthSettings = Field(default_factory=AuthSettings)
    policy_file: Path = Field(default=DEFAULT_POLICY, description="The YAML policy (NOTIFIER_POLICY_FILE).")
    db_schema: str = Field(default="notifier", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    group_id: str = "safeguard-notifier"
    tick_interval_s: float = Field(default=1.0, gt=0, description="How often escalation timers are checked.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    subscriptions: SubscriptionSettings = Field(default_factory=SubscriptionSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    channels: dict[str, ChannelSecrets] = Field(default_factory=dict)
    oncall_file: Path | None = Field(default=None, description="The on-call schedule (NOTIFIER_ONCALL_FILE, e.g. "
                                                               "config/oncall.yaml); without one, contacts are paged "
                                                               "by name.")
    ack_secret: SecretStr | None = Field(default=None, description="Signs acknowledge links (default: the "
                                                                    "notifier's key in Postgres).")
    ack_valid_s: float = Field(default=3600.0, gt=0, description="How long an acknowledge link works.")
    heartbeat_url: SecretStr | None = Field(default=None, description=(
        "A dead man's switch outside Safeguard (healthchecks.io, Dead Man's Snitch, a PagerDuty or Opsgenie "
        "heartbeat, an Uptime Kuma push monitor): GET every heartbeat_interval_s while the notifier is healthy, "
        "so that service pages when the notifier hangs (services/notifier/heartbeat.py). Never logged."))
    heartbeat_interval_s: float = Field(default=60.0, gt=0)
