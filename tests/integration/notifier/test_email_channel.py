"""The e-mail channel plugin against a real local SMTP server (aiosmtpd): the address from the recipient, the
on-call schedule or the channel's `to`; the same Message-ID on every try; a closed port is a delivery error."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from services.notifier.channels import ChannelSender, DeliveryError
from services.notifier.models import Incident
from services.notifier.policy import NotifierPolicy
from services.notifier.settings import SmtpSettings

INC = Incident(incident_id="inc-1", service="demo", trigger="error_rate_high", episode_id="ep", title="demo: errors",
               severity="major", opened_at=datetime.now(UTC))


def _policy(**channel: Any) -> NotifierPolicy:
    return NotifierPolicy.model_validate({"channels": {"oncall_page": channel},
                                          "webhook": {"attempts": 2, "backoff": 0.001, "timeout": 2}})


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_email_is_delivered_to_a_real_smtp_server_with_a_stable_message_id() -> None:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    try:
        sender = ChannelSender(policy=_policy(kind="email", to=["oncall@example.com"]), http=httpx.AsyncClient(),
                               smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, sender="pager@example.com"),
                               addresses={"alice": "alice@example.com"}.get)
        for recipient in ("alice", "nobody-known", "alice"):
            await sender.send(channel="oncall_page", recipient=recipient, message="[L2] demo down", incident=INC)
    finally:
        smtp.stop()
    first, other, again = inbox.messages
    assert first["To"] == "alice@example.com" and other["To"] == "oncall@example.com"
    assert "[L2] demo down" in first["Subject"] and "inc-1" in first.get_content()
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]


async def test_email_to_a_closed_port_is_a_delivery_error() -> None:
    sender = ChannelSender(policy=_policy(kind="email", to=["oncall@example.com"]), http=httpx.AsyncClient(),
                           smtp=SmtpSettings(host="127.0.0.1", port=_free_port(), timeout_s=2))
    with pytest.raises(DeliveryError, match="email: ConnectionRefusedError"):
        await sender.send(channel="oncall_page", recipient="alice", message="x", incident=None)
