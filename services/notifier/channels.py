"""Outbound edge: delivering notices. A channel with a `url` gets a webhook POST (JSON, bounded retries);
without one, the built-in log channel records the message. URLs may hold tokens: they are never logged."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime

import httpx

from services.notifier.models import Incident
from services.notifier.policy import ChannelName, NotifierPolicy

__all__ = ["ChannelSender", "DeliveryError"]

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """The webhook refused or did not answer after every attempt."""


class ChannelSender:
    def __init__(self, *, policy: NotifierPolicy, http: httpx.AsyncClient, keep: int = 500) -> None:
        self.policy = policy
        self.http = http
        self.log_channel: deque[dict[str, str]] = deque(maxlen=keep)
        # httpx logs every request URL at INFO, and a webhook URL often carries its token
        logging.getLogger("httpx").setLevel(logging.WARNING)

    async def send(self, *, channel: ChannelName, recipient: str, message: str, incident: Incident | None) -> None:
        url = getattr(self.policy.channels, channel).url
        if url is None:
            self.log_channel.append({"at": datetime.now(UTC).isoformat(), "channel": channel,
                                     "recipient": recipient, "message": message})
            log.info("notice [%s -> %s] %s", channel, recipient, message)
            return
        body: dict[str, object] = {"channel": channel, "recipient": recipient, "message": message,
                "incident": None if incident is None else incident.model_dump(mode="json", exclude={"timeline"})}
        await self._post(url, body, channel=channel)

    async def _post(self, url: str, body: dict[str, object], *, channel: str) -> None:
        hook = self.policy.webhook
        error = ""
        for attempt in range(1, hook.attempts + 1):
            try:
                r = await self.http.post(url, json=body, timeout=hook.timeout)
                if r.status_code < 400:
                    return
                error = f"HTTP {r.status_code}"
                if r.status_code < 500 and r.status_code != 429:
                    break  # the receiver refused the notice: retrying will not change its mind
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            log.warning("webhook for %s failed (attempt %d/%d): %s", channel, attempt, hook.attempts, error)
            if attempt < hook.attempts:
                await asyncio.sleep(hook.backoff * 2 ** (attempt - 1))
        raise DeliveryError(f"{channel} webhook: {error}")
