"""Outbound edge: delivering notices through channel plugins behind one interface (`ChannelPlugin`).

The policy names one plugin per channel (`log`, `webhook`, `slack`, `email`; see `channel_plugins`). Each
notice carries a `key` derived from what it says, the same on every retry, so receivers drop a repeat
(`X-Safeguard-Delivery`, the e-mail's Message-ID). URLs and secrets may hold tokens: they are never logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx

from services.notifier.models import Incident
from services.notifier.policy import Channel, ChannelName, NotifierPolicy
from services.notifier.settings import ChannelSecrets, SmtpSettings

__all__ = ["ChannelSender", "ChannelPlugin", "DeliveryError", "Outgoing", "LogPlugin", "notice_key"]

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """The channel refused or did not answer after every attempt."""


def notice_key(*, channel: str, recipient: str, message: str, incident_id: str | None) -> str:
    """The same notice has the same key on every try (a receiver's dedupe key)."""
    raw = "\x00".join([incident_id or "", channel, recipient, message])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Outgoing:
    """One notice to one recipient on one channel."""

    key: str
    channel: ChannelName
    recipient: str
    message: str
    incident: Incident | None


class ChannelPlugin(Protocol):
    async def deliver(self, notice: Outgoing) -> None:
        """Deliver or raise (after the plugin's own quick retries); the relay retries later with backoff."""


class LogPlugin:
    """The built-in channel: the notice is logged and kept in memory (the last `keep`)."""

    def __init__(self, *, keep: int = 500) -> None:
        self.records: deque[dict[str, str]] = deque(maxlen=keep)

    async def deliver(self, notice: Outgoing) -> None:
        self.records.append({"at": datetime.now(UTC).isoformat(), "channel": notice.channel,
                             "recipient": notice.recipient, "message": notice.message})
        log.info("notice [%s -> %s] %s", notice.channel, notice.recipient, notice.message)


class ChannelSender:
    """The notifier's `Sender`: picks each channel's plugin from the policy, with its URL and secret from the
    settings when given there. `addresses`: a person's e-mail address by name (the on-call schedule)."""

    def __init__(self, *, policy: NotifierPolicy, http: httpx.AsyncClient, keep: int = 500,
                 secrets: Mapping[str, ChannelSecrets] | None = None, smtp: SmtpSettings | None = None,
                 addresses: Callable[[str], str | None] | None = None) -> None:
        from services.notifier.channel_plugins import build_plugin  # the plugins import this module

        self.policy = policy
        self.log_plugin = LogPlugin(keep=keep)
        self.log_channel = self.log_plugin.records
        secrets = secrets or {}
        self.plugins: dict[str, ChannelPlugin] = {}
        for name in type(policy.channels).model_fields:
            channel: Channel = getattr(policy.channels, name)
            self.plugins[name] = build_plugin(channel=channel, secrets=secrets.get(name, ChannelSecrets()),
                                              name=name, policy=policy, http=http, smtp=smtp or SmtpSettings(),
                                              addresses=addresses, log_plugin=self.log_plugin)
        # httpx logs every request URL at INFO, and a webhook URL often carries its token
        logging.getLogger("httpx").setLevel(logging.WARNING)

    async def send(self, *, channel: ChannelName, recipient: str, message: str, incident: Incident | None) -> None:
        key = notice_key(channel=channel, recipient=recipient, message=message,
                         incident_id=incident.incident_id if incident else None)
        await self.plugins[channel].deliver(Outgoing(key=key, channel=channel, recipient=recipient,
                                                     message=message, incident=incident))
