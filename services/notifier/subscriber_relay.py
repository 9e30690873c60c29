"""Outbound edges of subscriptions: e-mail over SMTP and signed webhooks, sent by a relay of their own (so a
slow mail server or receiver never holds up an incident), retried with the policy's webhook backoff.

Nothing secret is logged: not a webhook URL (it may carry a token), not a secret, not an address.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import smtplib
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import quote

import httpx

from services.notifier.models import Incident
from services.notifier.policy import ChannelName, Webhook
from services.notifier.ports import Sender
from services.notifier.settings import SmtpSettings, SubscriptionSettings
from services.notifier.subscription_store import Due, PgSubscriberStore
from services.notifier.subscriptions import (
    SIGNATURE_HEADER, TIMESTAMP_HEADER, Notice, Subscriber, incident_notice_type, sign_token, sign_webhook,
)

__all__ = ["SubscriberRelay", "FanOutSender", "Links", "SmtpMailer", "render_email", "incident_notice"]

log = logging.getLogger(__name__)


class Links:
    """The signed links of a subscriber: confirm (expires) and unsubscribe (does not)."""

    def __init__(self, *, key: bytes, settings: SubscriptionSettings) -> None:
        self.key, self.settings = key, settings
        self.base = settings.public_url.rstrip("/")

    def confirm(self, subscriber_id: str, *, now: datetime) -> str:
        expires = now + timedelta(seconds=self.settings.confirm_within_s)
        token = sign_token(key=self.key, purpose="confirm", subject=subscriber_id, expires=expires)
        return f"{self.base}/status/subscribe/confirm?token={quote(token)}"

    def unsubscribe_token(self, subscriber_id: str) -> str:
        return sign_token(key=self.key, purpose="unsubscribe", subject=subscriber_id, expires=None)

    def unsubscribe(self, subscriber_id: str) -> str:
        return f"{self.base}/status/unsubscribe?token={quote(self.unsubscribe_token(subscriber_id))}"


def render_email(notice: Notice, *, to: str, sender: str, links: Links, subscriber_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Message-ID"] = sender, to, make_msgid(domain="safeguard.local")
    if notice.type == "subscription.confirm":
        msg["Subject"] = "Confirm your subscription to the status page"
        msg.set_content(f"Someone (hopefully you) asked for status notices at this address.\n\n"
                        f"Confirm: {links.confirm(subscriber_id, now=notice.at)}\n\n"
                        "If it was not you, ignore this message: nothing is sent without confirmation.\n")
        return msg
    unsubscribe = links.unsubscribe(subscriber_id)
    msg["Subject"] = f"[Status] {notice.message}"[:200]
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    when = f"\nWindow: {notice.starts_at:%Y-%m-%d %H:%M} - {notice.ends_at:%Y-%m-%d %H:%M} UTC" \
        if notice.starts_at and notice.ends_at else ""
    msg.set_content(f"{notice.message}\nAffected: {', '.join(notice.components) or '-'}{when}\n\n"
                    f"Status page: {links.base}/status\nUnsubscribe: {unsubscribe}\n")
    return msg


class SmtpMailer:
    """Sends one message over SMTP (the standard library's client, in a thread)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return self.settings.host is not None

    async def send(self, msg: EmailMessage) -> None:
        await asyncio.to_thread(self._send, msg)

    def _send(self, msg: EmailMessage) -> None:
        s = self.settings
        assert s.host is not None
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
            if s.starttls:
                smtp.starttls()
            if s.username and s.password:
                smtp.login(s.username, s.password.get_secret_value())
            smtp.send_message(msg)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SubscriberRelay:
    def __init__(self, *, store: PgSubscriberStore, http: httpx.AsyncClient, mailer: SmtpMailer, links: Links,
                 retry: Webhook, now: Callable[[], datetime] = _utcnow, lease_s: float = 120.0) -> None:
        self.store, self.http, self.mailer, self.links, self.retry, self.now = store, http, mailer, links, retry, now
        self.lease = timedelta(seconds=lease_s)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs each request's URL at INFO

    async def run_once(self) -> int:
        """Send every due notice (concurrently, each bounded by its timeout); the number sent."""
        due = await self.store.claim(now=self.now(), lease=self.lease)
        results = await asyncio.gather(*(self._deliver(d) for d in due))
        return sum(results)

    async def _deliver(self, d: Due) -> bool:
        try:
            if d.subscriber.kind == "email":
                await self._email(d.subscriber, d.notice)
            else:
                await self._webhook(d.subscriber, d.notice)
        except Exception as exc:  # noqa: BLE001 - a failed notice is retried with backoff, then given up
            tries = d.attempts + 1
            last = tries >= self.retry.redeliveries
            error = f"{type(exc).__name__}: {exc}"[:300] if not isinstance(exc, httpx.HTTPError) else type(exc).__name__
            log.warning("notice %s to subscriber %s failed (try %d%s): %s", d.notice.type,
                        d.subscriber.subscriber_id, tries, ", giving up" if last else "", error)
            nxt = None if last else self.now() + timedelta(seconds=self.retry.redeliver_in(tries))
            await self.store.failed(d.row_id, error=error, next_at=nxt)
            return False
        await self.store.done(d.row_id)
        return True

    async def _email(self, sub: Subscriber, notice: Notice) -> None:
        if not self.mailer.configured:
            raise RuntimeError("no SMTP host configured (NOTIFIER_SMTP__HOST)")
        await self.mailer.send(render_email(notice, to=sub.target, sender=self.mailer.settings.sender,
                                            links=self.links, subscriber_id=sub.subscriber_id))

    async def _webhook(self, sub: Subscriber, notice: Notice) -> None:
        if sub.secret is None:
            raise RuntimeError("the subscription has no secret (unsubscribed)")
        body = json.dumps({**notice.model_dump(mode="json"),
                           "unsubscribe_url": self.links.unsubscribe(sub.subscriber_id)}).encode()
        ts = int(self.now().timestamp())
        headers = {"Content-Type": "application/json", "User-Agent": "safeguard-notifier",
                   "X-Safeguard-Event": notice.type, "X-Safeguard-Delivery": notice.notice_id,
                   TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign_webhook(secret=sub.secret, timestamp=ts, body=body)}
        r = await self.http.post(sub.target, content=body, headers=headers, timeout=self.retry.timeout,
                                 follow_redirects=False)
        if r.status_code >= 300:
            raise RuntimeError(f"the receiver answered HTTP {r.status_code}")


def incident_notice(message: str, incident: Incident) -> Notice | None:
    """The subscribers' notice of a status page notice (None for internal steps such as escalations)."""
    kind = incident_notice_type(message)
    if kind is None:
        return None
    key = hashlib.sha256(f"{incident.incident_id}\x00{message}".encode()).hexdigest()[:24]
    return Notice(notice_id=f"{incident.incident_id}:{key}", type=kind, at=_utcnow(), title=incident.title,
                  message=message, components=[incident.service], incident_id=incident.incident_id)


class FanOutSender:
    """A `Sender` that also queues each public incident notice for the subscribers, then delivers as before.
    Only incidents of the severities users are told about (`user_notice_severities`, by default major and
    critical, issue 14's audiences) reach subscribers; a minor one is on the page only. The queueing is one
    idempotent insert: a redelivered status page notice queues nothing twice."""

    def __init__(self, *, inner: Sender, store: PgSubscriberStore, severities: Collection[str]) -> None:
        self.inner, self.store, self.severities = inner, store, frozenset(severities)

    async def send(self, *, channel: ChannelName, recipient: str, message: str, incident: Incident | None) -> None:
        if channel == "status_page" and incident is not None and incident.severity in self.severities:
            notice = incident_notice(message, incident)
            if notice is not None:
                await self.store.fan_out(notice)
        await self.inner.send(channel=channel, recipient=recipient, message=message, incident=incident)
