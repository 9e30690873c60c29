"""Status page subscriptions (like Statuspage's): e-mail with double opt-in, or a webhook whose every notice is
signed with HMAC-SHA256 over the timestamp and the body (like Stripe's and GitHub's). Pure: the notice,
the signed tokens of the confirmation and unsubscribe links, the webhook signature and its check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, model_validator

__all__ = ["Notice", "NoticeType", "SubscribeRequest", "Subscriber", "TokenError", "sign_token", "read_token",
           "sign_webhook", "verify_webhook", "new_secret", "is_private_url", "incident_notice_type",
           "SIGNATURE_HEADER", "TIMESTAMP_HEADER"]

NoticeType = Literal["incident.opened", "incident.updated", "incident.resolved", "maintenance.scheduled",
                     "maintenance.started", "maintenance.finished", "maintenance.cancelled",
                     "subscription.confirm"]
SIGNATURE_HEADER = "X-Safeguard-Signature"
TIMESTAMP_HEADER = "X-Safeguard-Timestamp"
_EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
# the status page's own words for each step of an incident (service._announce): what a subscriber is told
_INCIDENT_STEPS: dict[str, NoticeType] = {"Investigating:": "incident.opened", "Identified:": "incident.updated",
                                          "Monitoring:": "incident.updated", "Resolved:": "incident.resolved"}


class Notice(BaseModel):
    """One thing subscribers are told (the webhook body, the e-mail's content). `notice_id`: the same notice
    sent again has the same id (receivers dedupe on it)."""

    notice_id: str
    type: NoticeType
    at: datetime
    title: str
    message: str
    components: list[str] = Field(default_factory=list)
    incident_id: str | None = None
    window_id: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def incident_notice_type(message: str) -> NoticeType | None:
    """Opened / updated / resolved from the status page notice's first word; None for internal ones
    (escalations)."""
    return next((t for prefix, t in _INCIDENT_STEPS.items() if message.startswith(prefix)), None)


class SubscribeRequest(BaseModel):
    """`POST /status/subscribe`: exactly one of `email` and `webhook`."""

    model_config = {"extra": "forbid"}
    email: str | None = Field(default=None, max_length=254)
    webhook: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one(self) -> SubscribeRequest:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("give exactly one of 'email' and 'webhook'")
        if self.email is not None and not _EMAIL.fullmatch(self.email):
            raise ValueError(f"not an e-mail address: {self.email!r}")
        if self.webhook is not None and not re.fullmatch(r"https?://[^\s/?#@]+(/[^\s]*)?", self.webhook):
            raise ValueError("the webhook must be an http:// or https:// URL (no credentials in it)")
        return self


class Subscriber(BaseModel):
    subscriber_id: str
    kind: Literal["email", "webhook"]
    target: str
    secret: str | None = Field(default=None, repr=False)
    created_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None


def is_private_url(url: str) -> bool:
    """The URL names this machine or a private network by address or as localhost (a public form must
    not make the notifier call inside its own network). A name that resolves inside is not caught."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class TokenError(ValueError):
    """The link's token is forged, for another purpose, or expired."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(*, key: bytes, purpose: str, subject: str, expires: datetime | None) -> str:
    """`<payload>.<mac>`: who it is for, what for, until when; HMAC-SHA256 under the notifier's key."""
    payload = _b64(json.dumps({"p": purpose, "s": subject,
                               "e": int(expires.timestamp()) if expires else None}).encode())
    return f"{payload}.{_b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())}"


def read_token(token: str, *, key: bytes, purpose: str, now: datetime) -> str:
    """The token's subject; `TokenError` saying why when it is not good for `purpose` now."""
    payload, _, mac = token.partition(".")
    good = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not mac or not hmac.compare_digest(mac, good):
        raise TokenError("the link is not valid (altered or not ours)")
    try:
        body = json.loads(_unb64(payload))
    except ValueError:
        raise TokenError("the link is not valid (unreadable)") from None
    if body.get("p") != purpose:
        raise TokenError(f"the link is not a {purpose} link")
    if body.get("e") is not None and now.timestamp() > body["e"]:
        raise TokenError("the link has expired; subscribe again for a new one")
    return str(body["s"])


def sign_webhook(*, secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Safeguard-Signature` value: `sha256=` HMAC-SHA256(secret, "<timestamp>.<body>") in hex."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_webhook(*, secret: str, timestamp: str, signature: str, body: bytes, now: datetime,
                   tolerance: timedelta = timedelta(minutes=5)) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent (a replayed notice is not)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - ts) > tolerance.total_seconds():
        return False
    return hmac.compare_digest(signature, sign_webhook(secret=secret, timestamp=ts, body=body))
