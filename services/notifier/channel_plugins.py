"""The channel plugins: a webhook signed with HMAC-SHA256 over the timestamp and the body (the status page
subscriptions' signature: `subscriptions.sign_webhook`, checked by `verify_notice`), a Slack-compatible
incoming webhook (Block Kit), e-mail over SMTP (the subscriptions' `SmtpMailer`), and Apprise for the long
tail (Discord, Teams, Telegram, ntfy, Opsgenie, PagerDuty Events, ... : one URL each, the library Uptime
Kuma uses for the same job; https://github.com/caronc/apprise/wiki).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx

from services.notifier.channels import ChannelPlugin, DeliveryError, LogPlugin, Outgoing
from services.notifier.policy import Channel, NotifierPolicy, Webhook
from services.notifier.settings import ChannelSecrets, SmtpSettings
from services.notifier.subscriber_relay import SmtpMailer
from services.notifier.subscriptions import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook, verify_webhook

__all__ = ["WebhookPlugin", "SlackPlugin", "EmailPlugin", "ApprisePlugin", "build_plugin", "verify_notice", "slack_blocks",
           "DELIVERY_HEADER"]

log = logging.getLogger(__name__)
DELIVERY_HEADER = "X-Safeguard-Delivery"


def verify_notice(*, secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> bool:
    """What a receiver of the signed webhook does: the signature over `<timestamp>.<body>` matches and the
    timestamp is within 5 minutes (a replayed notice is refused). `headers` case-insensitive like httpx's."""
    lower = {k.lower(): v for k, v in headers.items()}
    return verify_webhook(secret=secret, timestamp=lower.get(TIMESTAMP_HEADER.lower(), ""),
                          signature=lower.get(SIGNATURE_HEADER.lower(), ""), body=body, now=now)


class _Poster:
    """POST with the policy's quick retries: 5xx, 429 and network errors are tried again, other 4xx are not."""

    def __init__(self, *, http: httpx.AsyncClient, url: str, retry: Webhook, name: str) -> None:
        self.http, self.url, self.retry, self.name = http, url, retry, name

    async def post(self, body: bytes, headers: Callable[[], dict[str, str]]) -> None:
        error = ""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                r = await self.http.post(self.url, content=body, headers=headers(), timeout=self.retry.timeout,
                                         follow_redirects=False)
                if r.status_code < 300:
                    return
                error = f"HTTP {r.status_code}"
                if r.status_code < 500 and r.status_code != 429:
                    break  # the receiver refused the notice: retrying will not change its mind
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            log.warning("%s failed (attempt %d/%d): %s", self.name, attempt,
                        self.retry.attempts, error)
            if attempt < self.retry.attempts:
                await asyncio.sleep(self.retry.backoff * 2 ** (attempt - 1))
        raise DeliveryError(f"{self.name}: {error}")


def _incident_json(notice: Outgoing) -> dict[str, Any] | None:
    inc = notice.incident
    return None if inc is None else inc.model_dump(mode="json", exclude={"timeline"})


class WebhookPlugin:
    """JSON POST; with a secret, `X-Safeguard-Timestamp` and `X-Safeguard-Signature: sha256=<hex>`."""

    def __init__(self, *, poster: _Poster, secret: str | None, now: Callable[[], float]) -> None:
        self.poster, self.secret, self.now = poster, secret, now

    async def deliver(self, notice: Outgoing) -> None:
        body = json.dumps({"delivery_id": notice.key, "channel": notice.channel, "recipient": notice.recipient,
                           "message": notice.message, "incident": _incident_json(notice)},
                          separators=(",", ":")).encode()
        await self.poster.post(body, lambda: self._headers(notice, body))

    def _headers(self, notice: Outgoing, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "safeguard-notifier",
                   DELIVERY_HEADER: notice.key}
        if self.secret is not None:  # signed at each try: the timestamp is the try's
            ts = int(self.now())
            headers |= {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign_webhook(secret=self.secret, timestamp=ts,
                                                                                  body=body)}
        return headers


def _mrkdwn(text: str) -> str:
    """Slack's control characters in text (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(notice: Outgoing) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (the notification's fallback) and Block Kit blocks."""
    inc = notice.incident
    context = [f"*{notice.channel.replace('_', ' ')}* to {_mrkdwn(notice.recipient)}"]
    if inc is not None:
        context += [f"severity *{inc.severity}*", f"level {inc.level}", f"`{inc.incident_id}`"]
    text = _mrkdwn(notice.message)
    return {"text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
                       {"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(context)}]}]}


class SlackPlugin:
    def __init__(self, *, poster: _Poster) -> None:
        self.poster = poster

    async def deliver(self, notice: Outgoing) -> None:
        body = json.dumps(slack_blocks(notice), separators=(",", ":")).encode()
        await self.poster.post(body, lambda: {"Content-Type": "application/json"})


class EmailPlugin:
    """One message per notice; the recipient's address is the recipient itself, the person's address from
    the on-call schedule, or the channel's `to` list."""

    def __init__(self, *, mailer: SmtpMailer, to: list[str], addresses: Callable[[str], str | None] | None) -> None:
        self.mailer, self.to, self.addresses = mailer, to, addresses

    def _rcpt(self, recipient: str) -> list[str]:
        if "@" in recipient:
            return [recipient]
        found = self.addresses(recipient) if self.addresses else None
        return [found] if found else self.to

    async def deliver(self, notice: Outgoing) -> None:
        if not self.mailer.configured:
            raise DeliveryError("email: no SMTP host configured (NOTIFIER_SMTP__HOST)")
        rcpt = self._rcpt(notice.recipient)
        if not rcpt:
            raise DeliveryError(f"email: no address for {notice.recipient!r} (set the channel's `to`)")
        msg = EmailMessage()
        msg["From"], msg["To"] = self.mailer.settings.sender, ", ".join(rcpt)
        msg["Message-ID"] = f"<{notice.key}@safeguard.notifier>"  # the same on every try: clients drop repeats
        msg["Subject"] = f"[Safeguard {notice.channel.replace('_', ' ')}] {notice.message}"[:200].replace("\n", " ")
        inc = notice.incident
        about = "" if inc is None else f"\n\nIncident {inc.incident_id} ({inc.service}, {inc.severity})"
        msg.set_content(f"{notice.message}{about}\n")
        try:
            await self.mailer.send(msg)
        except Exception as exc:  # noqa: BLE001 - smtplib raises OSError or SMTPException; retried by the relay
            raise DeliveryError(f"email: {type(exc).__name__}") from exc


class ApprisePlugin:
    """Any service Apprise knows, from its URL (`discord://...`, `ntfy://...`, `json://...`). The URL holds
    the service's token, so it comes from the environment only (`NOTIFIER_CHANNELS__<NAME>__URL`), and no
    message of ours names it. Apprise's own HTTP calls run in its thread pool; one try per delivery, the
    relay retries with backoff like every other channel."""

    def __init__(self, *, url: str, name: str) -> None:
        import apprise  # the long tail only: the other plugins do not pay for its import

        self.name, self.client = name, apprise.Apprise()
        if not self.client.add(url):
            raise ValueError(f"channel {name}: not a URL Apprise knows (scheme {url.split('://', 1)[0]!r}); "
                             "see https://github.com/caronc/apprise/wiki")
        self._failure = apprise.NotifyType.FAILURE
        self._info = apprise.NotifyType.INFO

    async def deliver(self, notice: Outgoing) -> None:
        inc = notice.incident
        title = f"[Safeguard {notice.channel.replace('_', ' ')}]" + ("" if inc is None else f" {inc.title}")
        about = "" if inc is None else f"\n\nIncident {inc.incident_id} ({inc.service}, {inc.severity}, L{inc.level})"
        kind = self._failure if inc is not None and inc.status != "resolved" else self._info
        if not await self.client.async_notify(body=f"{notice.message}{about}", title=title[:250], notify_type=kind):
            raise DeliveryError(f"{self.name} apprise: the service refused the notice or did not answer")


def build_plugin(*, channel: Channel, secrets: ChannelSecrets, name: str, policy: NotifierPolicy,
                 http: httpx.AsyncClient, smtp: SmtpSettings, addresses: Callable[[str], str | None] | None,
                 log_plugin: LogPlugin) -> ChannelPlugin:
    url = secrets.url.get_secret_value() if secrets.url else channel.url
    kind = channel.kind or ("webhook" if url else "log")
    if kind == "email":
        return EmailPlugin(mailer=SmtpMailer(smtp), to=channel.to, addresses=addresses)
    if kind == "log":
        return log_plugin
    if kind == "apprise":
        if secrets.url is None:
            raise ValueError(f"channel {name}: an apprise URL holds a token: set NOTIFIER_CHANNELS__{name.upper()}__URL")
        return ApprisePlugin(url=secrets.url.get_secret_value(), name=name)
    if url is None:
        raise ValueError(f"channel {name}: kind {kind} needs a url (policy or NOTIFIER_CHANNELS__{name.upper()}__URL)")
    poster = _Poster(http=http, url=url, retry=policy.webhook, name=f"{name} {kind}")
    if kind == "slack":
        return SlackPlugin(poster=poster)
    secret = secrets.secret.get_secret_value() if secrets.secret else None
    if secret is None:
        log.warning("channel %s: webhook without a secret: its notices are not signed", name)
    return WebhookPlugin(poster=poster, secret=secret, now=time.time)
