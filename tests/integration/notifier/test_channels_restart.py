"""Durable channel deliveries on real Postgres: a page to a signed webhook whose receiver is down is kept,
survives a notifier restart and reaches the receiver (signature checked) once it is back; the e-mail to the
stakeholders goes out meanwhile through a real SMTP server (aiosmtpd); the page's acknowledge link works
on the restarted notifier (its key is in Postgres)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.channel_plugins import DELIVERY_HEADER, verify_notice
from services.notifier.oncall import OnCallSchedule
from services.notifier.policy import NotifierPolicy, load_policy
from services.notifier.settings import ChannelSecrets, NotifierSettings, SmtpSettings, SubscriptionSettings
from shared.auth import AuthSettings
from shared.settings import PostgresSettings, RedisSettings
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG

SECRET = "whsec_integration-secret"
ADMIN = {"Authorization": "Bearer tok", "X-Safeguard-Actor": "carol"}
SCHEDULE = OnCallSchedule.model_validate({
    "people": {"alice": {"email": "alice@example.com"}},
    "rotations": [{"name": "oncall-developer", "start": "2026-01-01T00:00", "members": ["alice"]}]})


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@dataclass
class Receiver:
    """503 while `down`; else checks the signature like a real receiver (401 when it does not match)."""

    down: bool = True
    refused: int = 0
    accepted: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in head.split("\r\n")[1:]) if k}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if self.down:
            self.refused, code = self.refused + 1, 503
        elif verify_notice(secret=SECRET, headers=headers, body=body, now=datetime.now(UTC)):
            self.accepted.append((headers, body))
            code = 200
        else:
            code = 401
        writer.write(f"HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(check: Callable[[], Any], *, timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _policy(hook: str) -> NotifierPolicy:
    raw = load_policy(CONFIG).model_dump()
    raw["channels"]["oncall_page"] = {"kind": "webhook", "url": hook}
    raw["channels"]["stakeholder"] = {"kind": "email", "recipients": ["stakeholders"], "to": ["board@example.com"]}
    raw["webhook"] = {"timeout": 2, "attempts": 1, "backoff": 0.1, "redeliver_after": 0.3, "redeliver_max": 0.5,
                      "redeliveries": 100}
    return NotifierPolicy.model_validate(raw)


async def test_a_page_refused_before_a_restart_is_delivered_signed_after_it(
        postgres_dsn: str, redis_url: str, unique: str) -> None:
    inbox, rx = Inbox(), Receiver()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    server = await asyncio.start_server(rx.handle, "127.0.0.1", 0)
    hook = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/page"
    schema = f"notifier_ch{unique}"
    settings = NotifierSettings(
        policy_file=CONFIG, db_schema=schema, tick_interval_s=0.1,
        auth=AuthSettings(admin_token=SecretStr("tok"), env="test"),
        postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)), redis=RedisSettings(url=SecretStr(redis_url)),
        smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, sender="pager@safeguard.test"),
        subscriptions=SubscriptionSettings(public_url="http://status.test"),
        channels={"oncall_page": ChannelSecrets(secret=SecretStr(SECRET))})

    def app() -> Any:
        return create_app(settings, policy=_policy(hook), publisher=InMemoryPublisher(), consume=False,
                          oncall=SCHEDULE)
    try:
        first = app()
        async with first.router.lifespan_context(first):
            # a try cut by the shutdown keeps its lease (120 s by default) before anyone sends it again
            first.state.notifier.lease = timedelta(seconds=1)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(first), base_url="http://t") as c:
                r = await c.post("/api/incidents", headers=ADMIN,
                                 json={"service": "shop", "title": "checkout fails", "page": True})
                assert r.status_code == 201, r.text
                iid = r.json()["incident_id"]
                await _until(lambda: rx.refused >= 2, what="the receiver refused the page twice")
                # the e-mail channel is not held up by the failing webhook
                await _until(lambda: inbox.messages, what="the stakeholder e-mail")
        refused = rx.refused
        rx.down = False
        second = app()
        async with second.router.lifespan_context(second):
            await _until(lambda: rx.accepted, what="the page after the restart")
            await asyncio.sleep(0.5)  # nothing more comes: delivered once
            headers, body = rx.accepted[0]
            page = json.loads(body)
            assert len(rx.accepted) == 1 and page["recipient"] == "alice" and page["incident"]["incident_id"] == iid
            assert headers[DELIVERY_HEADER.lower()] == page["delivery_id"]
            link = re.search(r"Acknowledge: http://status\.test(\S+)$", page["message"])
            assert link is not None
            async with httpx.AsyncClient(transport=httpx.ASGITransport(second), base_url="http://t") as c:
                confirm = await c.get(link.group(1))
                assert confirm.status_code == 200 and "Acknowledge as alice" in confirm.text
        [mail] = inbox.messages
        assert mail["To"] == "board@example.com" and "Investigating: shop: checkout fails" in mail["Subject"]
        conn = await asyncpg.connect(postgres_dsn)
        try:
            row = await conn.fetchrow(f'SELECT status, attempts, ok FROM "{schema}".deliveries'
                                      " WHERE channel = 'oncall_page'")
        finally:
            await conn.close()
        # every try is recorded but one cut by the shutdown (its lease ran out instead)
        assert row["status"] == "sent" and row["ok"] and refused <= row["attempts"] <= refused + 1
    finally:
        server.close()
        smtp.stop()
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
