"""Maintenance windows and status page subscriptions for real: Postgres (a schema per test), Redis (the
subscribe rate limit), a local SMTP server (aiosmtpd) and a local HTTP webhook receiver that checks the
signature. Incidents are opened through the core (no Kafka consumer in these apps)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import uuid4

import asyncpg
import feedparser  # type: ignore[import-untyped]
import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.policy import Webhook, load_policy
from services.notifier.service import incident_id_for
from services.notifier.settings import NotifierSettings, SmtpSettings, SubscriptionSettings
from services.notifier.subscriptions import verify_webhook
from shared.auth import AuthSettings
from shared.events import TriggerFired
from shared.settings import PostgresSettings, RedisSettings
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender

TOKEN = "maintenance-test-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "X-Safeguard-Actor": "alice"}
FORCED = "/api/maintenance?force=true"  # whatever the hour the tests run at (business hours are refused)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler: every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@dataclass
class Receiver:
    """A webhook receiver: answers the codes in `script` first, then 200; keeps what it was sent."""

    script: list[int] = field(default_factory=list)
    got: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in head.split("\r\n")[1:]) if k}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        code = self.script.pop(0) if self.script else 200
        self.got.append((headers, body, code))
        writer.write(f"HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@dataclass
class Rig:
    http: httpx.AsyncClient
    app: FastAPI
    sender: FakeSender
    inbox: Inbox
    receiver: Receiver
    hook_url: str
    address: str  # this test's own X-Forwarded-For: its own rate-limit bucket


async def _until(check: Callable[[], Any], *, timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
async def rig(postgres_dsn: str, redis_url: str, unique: str) -> AsyncIterator[Rig]:
    inbox, receiver = Inbox(), Receiver()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    schema = f"notifier_mw{unique}"
    settings = NotifierSettings(
        policy_file=CONFIG, db_schema=schema, tick_interval_s=0.1,
        auth=AuthSettings(admin_token=SecretStr(TOKEN), env="test", client_keys={"reader": SecretStr("rk")}),
        postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)), redis=RedisSettings(url=SecretStr(redis_url)),
        smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, sender="status@safeguard.test"),
        subscriptions=SubscriptionSettings(public_url="http://status.test", rate="3/minute",
                                           allow_private_webhooks=True, relay_interval_s=0.05))
    # quick redelivery, so a receiver that refuses once gets the notice within the test
    policy = load_policy(CONFIG).model_copy(update={"webhook": Webhook(timeout=2, attempts=1, backoff=0.1,
                                                                       redeliver_after=0.2, redeliveries=4)})
    sender = FakeSender()
    app = create_app(settings, policy=policy, publisher=InMemoryPublisher(), sender=sender, consume=False)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://status.test") as http:
                port = server.sockets[0].getsockname()[1]
                yield Rig(http, app, sender, inbox, receiver, f"http://127.0.0.1:{port}/hook/{unique}",
                          f"2001:db8::{unique[:4]}:{unique[4:8]}")
    finally:
        server.close()
        smtp.stop()
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def fired(service: str) -> TriggerFired:
    return TriggerFired(service=service, trigger="db_connection_lost", episode_id="ep1", value=1, threshold=0,
                        window_seconds=30)


def _at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def _subscribe(rig: Rig, body: dict[str, str]) -> httpx.Response:
    return await rig.http.post("/status/subscribe", json=body, headers={"X-Forwarded-For": rig.address})


async def test_maintenance_api_checks_audits_lists_and_cancels(rig: Rig) -> None:
    h = rig.http
    window = {"title": "Postgres 17 upgrade", "components": ["demo", "postgres"], "ends_at": _at(3),
              "description": "read-only for a few minutes"}
    assert (await h.post("/api/maintenance", json=window)).status_code == 401
    bad = await h.post("/api/maintenance", json={**window, "starts_at": _at(4)}, headers=ADMIN)
    assert bad.status_code == 422 and "must be after starts_at" in bad.json()["detail"]
    long = await h.post("/api/maintenance", json={**window, "ends_at": _at(24 * 9)}, headers=ADMIN)
    assert long.status_code == 422 and "the longest allowed is 7 days" in long.json()["detail"]
    past = await h.post("/api/maintenance", json={**window, "starts_at": _at(-3), "ends_at": _at(-2)}, headers=ADMIN)
    assert past.status_code == 422 and "is in the past" in past.json()["detail"]
    naive = await h.post("/api/maintenance", json={**window, "ends_at": "2030-01-01T03:00:00"}, headers=ADMIN)
    assert naive.status_code == 422 and "timezone" in naive.text

    # next Tuesday 10:00 Bangkok (business hours by default): refused naming the overlap, unless forced
    now = datetime.now(UTC)
    tuesday = (now + timedelta(days=(1 - now.weekday()) % 7 or 7)).replace(hour=3, minute=0, second=0, microsecond=0)
    inside = {**window, "starts_at": tuesday.isoformat(), "ends_at": (tuesday + timedelta(hours=1)).isoformat()}
    for path in ("/api/maintenance", "/api/maintenance?strict=true"):  # strict: the old spelling, no effect
        refused = await h.post(path, json=inside, headers=ADMIN)
        assert refused.status_code == 409, refused.text
        assert f"inside business hours (mon-fri 09:00-18:00 Asia/Bangkok): Tue {tuesday:%Y-%m-%d} 10:00-11:00" \
               in refused.json()["detail"] and "?force=true" in refused.json()["detail"]
    forced = await h.post(FORCED, json=inside, headers=ADMIN)
    assert forced.status_code == 201 and forced.json()["warnings"][0].startswith("forced by admin:alice: ")
    upcoming = forced.json()["window"]
    assert upcoming["created_by"] == "admin:alice" and upcoming["components"] == ["demo", "postgres"]
    assert upcoming["forced"] is True
    # that Tuesday 20:00 Bangkok: outside business hours, accepted without force and not marked
    evening = tuesday + timedelta(hours=10)
    calm = await h.post("/api/maintenance", headers=ADMIN, json={**window, "starts_at": evening.isoformat(),
                                                                 "ends_at": (evening + timedelta(hours=1)).isoformat()})
    assert calm.status_code == 201 and calm.json()["warnings"] == [] and calm.json()["window"]["forced"] is False

    now_ = await h.post(FORCED, json=window, headers=ADMIN)  # no starts_at: from now
    assert now_.status_code == 201
    assert (await h.get("/api/maintenance")).status_code == 401  # who scheduled it is for operators
    listing = (await h.get("/api/maintenance", headers={"X-API-Key": "rk"})).json()
    assert [w["window_id"] for w in listing["upcoming"]] == [upcoming["window_id"], calm.json()["window"]["window_id"]]
    assert [w["forced"] for w in listing["upcoming"]] == [True, False]  # shown to operators
    assert [w["window_id"] for w in listing["in_progress"]] == [now_.json()["window"]["window_id"]]

    assert (await h.delete("/api/maintenance/mw-nope", headers=ADMIN)).status_code == 404
    assert (await h.delete(f"/api/maintenance/{upcoming['window_id']}")).status_code == 401
    gone = await h.delete(f"/api/maintenance/{upcoming['window_id']}", headers={**ADMIN, "X-Safeguard-Actor": "bob"})
    assert gone.status_code == 200 and gone.json()["cancelled_by"] == "admin:bob"
    again = await h.delete(f"/api/maintenance/{upcoming['window_id']}", headers=ADMIN)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    listing = (await h.get("/api/maintenance", headers=ADMIN)).json()
    assert [w["window_id"] for w in listing["cancelled"]] == [upcoming["window_id"]]
    assert [w["window_id"] for w in listing["upcoming"]] == [calm.json()["window"]["window_id"]]


async def test_an_incident_in_maintenance_pages_nobody_and_the_page_shows_the_window(rig: Rig) -> None:
    h, svc = rig.http, rig.app.state.notifier
    service = f"maint-{uuid4().hex[:6]}"
    r = await h.post(FORCED, json={"title": "Reindex", "components": [service], "ends_at": _at(1)},
                     headers=ADMIN)
    assert r.status_code == 201, r.text
    later = await h.post(FORCED, json={"title": "Kernel patch", "components": ["redis"],
                                                   "starts_at": _at(30), "ends_at": _at(31)}, headers=ADMIN)
    assert later.status_code == 201
    await svc.open_incident(fired(service))
    await svc.open_incident(fired(f"{service}-other"))
    inc = await svc.get(incident_id_for(service, "ep1"))
    assert inc.during_maintenance and "held: maintenance 'Reindex' in progress" in inc.timeline[-1].text
    assert not any(service + ":" in m for _, _, m in rig.sender.sent)  # nobody told
    assert any(f"{service}-other" in m for _, _, m in rig.sender.sent)  # another service is

    status = (await h.get("/status.json")).json()
    comps = {c["name"]: c for c in status["components"]}
    assert comps[service]["state"] == "under_maintenance" and comps[service]["label"] == "Under maintenance"
    assert "Reindex" in comps[service]["detail"]
    assert [w["title"] for w in status["maintenance"]["in_progress"]] == ["Reindex"]
    assert [w["title"] for w in status["maintenance"]["upcoming"]] == ["Kernel patch"]
    assert "created_by" not in status["maintenance"]["upcoming"][0]  # who did it is not public
    page = (await h.get("/status")).text
    assert "Scheduled maintenance" in page and "Kernel patch" in page and "Under maintenance" in page
    feed = feedparser.parse((await h.get("/status/feed.atom")).content)
    assert not feed.bozo
    titles = {e.title for e in feed.entries}
    assert "[maintenance in progress] Reindex" in titles and "[scheduled maintenance] Kernel patch" in titles


async def test_email_double_opt_in_over_smtp_then_notices_and_unsubscribe(rig: Rig) -> None:
    h = rig.http
    r = await _subscribe(rig, {"email": "Ops@Example.com"})
    assert r.status_code == 202 and "confirmation link" in r.json()["detail"]
    confirm = await _until(lambda: rig.inbox.messages, what="the confirmation e-mail")
    assert confirm[0]["To"] == "ops@example.com" and confirm[0]["From"] == "status@safeguard.test"
    link = re.search(r"http://status\.test(/status/subscribe/confirm\?token=\S+)", confirm[0].get_content())
    assert link is not None
    # nothing is sent before the link is followed
    await h.post(FORCED, json={"title": "Before confirming", "components": ["demo"], "starts_at": _at(5),
                                           "ends_at": _at(6)}, headers=ADMIN)
    bad = await h.get("/status/subscribe/confirm?token=" + link.group(1).split("token=")[1][:-3] + "abc")
    assert bad.status_code == 400 and "not valid" in bad.text
    ok = await h.get(link.group(1))
    assert ok.status_code == 200 and "Subscribed" in ok.text

    await h.post(FORCED, json={"title": "After confirming", "components": ["demo"], "starts_at": _at(5),
                                           "ends_at": _at(6)}, headers=ADMIN)
    mails = await _until(lambda: [m for m in rig.inbox.messages if "After confirming" in m["Subject"]],
                         what="the maintenance notice")
    assert not [m for m in rig.inbox.messages if "Before confirming" in str(m["Subject"])]
    unsubscribe = re.search(r"<http://status\.test(/status/unsubscribe\?token=\S+)>", mails[0]["List-Unsubscribe"])
    assert unsubscribe is not None and mails[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Unsubscribe" in (await h.get(unsubscribe.group(1))).text  # a button, not the act
    done = await h.post(unsubscribe.group(1), content="List-Unsubscribe=One-Click",
                        headers={"content-type": "application/x-www-form-urlencoded", "X-Forwarded-For": rig.address})
    assert done.status_code == 200 and "Unsubscribed" in done.text
    count = len(rig.inbox.messages)
    await h.post(FORCED, json={"title": "After leaving", "components": ["demo"], "starts_at": _at(5),
                                           "ends_at": _at(6)}, headers=ADMIN)
    await asyncio.sleep(0.5)  # several relay rounds
    assert len(rig.inbox.messages) == count


async def test_webhook_notices_are_signed_and_retried_and_the_secret_is_never_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    rig.receiver.script = [503]  # the first notice is refused once
    r = await _subscribe(rig, {"webhook": rig.hook_url})
    assert r.status_code == 201, r.text
    secret, token = r.json()["secret"], r.json()["unsubscribe_token"]
    assert secret.startswith("whsec_")
    again = await _subscribe(rig, {"webhook": rig.hook_url})
    assert again.status_code == 409 and "secret" not in again.json()

    service = f"hook-{uuid4().hex[:6]}"
    await rig.app.state.notifier.open_incident(fired(service))
    got = await _until(lambda: [g for g in rig.receiver.got if g[2] == 200], what="the signed incident notice")
    assert [g[2] for g in rig.receiver.got][:2] == [503, 200]  # refused, then redelivered
    headers, body, _ = got[0]
    notice = json.loads(body)
    assert notice["type"] == "incident.opened" and notice["components"] == [service]
    assert headers["x-safeguard-signature"].startswith("sha256=")
    assert verify_webhook(secret=secret, timestamp=headers["x-safeguard-timestamp"],
                          signature=headers["x-safeguard-signature"], body=body, now=datetime.now(UTC))
    assert not verify_webhook(secret="whsec_wrong", timestamp=headers["x-safeguard-timestamp"],
                              signature=headers["x-safeguard-signature"], body=body, now=datetime.now(UTC))
    assert rig.receiver.got[0][0]["x-safeguard-delivery"] == headers["x-safeguard-delivery"]  # same notice id

    done = await rig.http.post(f"/status/unsubscribe?token={token}", headers={"X-Forwarded-For": rig.address})
    assert done.status_code == 200
    n = len(rig.receiver.got)
    await rig.app.state.notifier.resolve(incident_id_for(service, "ep1"), actor="admin")
    await asyncio.sleep(0.5)
    assert len(rig.receiver.got) == n  # unsubscribed: nothing more
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in logged and rig.hook_url not in logged and token not in logged


async def test_subscribe_is_rate_limited_and_explains_bad_input(rig: Rig) -> None:
    bad = await _subscribe(rig, {"webhook": "ftp://example.com/x"})
    assert bad.status_code == 422 and "http:// or https://" in bad.json()["detail"]
    both = await _subscribe(rig, {"email": "a@example.com", "webhook": "https://example.com/x"})
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    form = await rig.http.post("/status/subscribe", content="email=b%40example.com",  # the page's form
                               headers={"content-type": "application/x-www-form-urlencoded",
                                        "X-Forwarded-For": rig.address})
    assert form.status_code == 202 and "Check your inbox" in form.text and "b@example.com" in form.text
    limited = await _subscribe(rig, {"email": "b@example.com"})
    assert limited.status_code == 429 and "Retry-After" in limited.headers  # 3 per minute per caller
    other = await rig.http.post("/status/subscribe", json={"email": "c@example.com"},
                                headers={"X-Forwarded-For": "2001:db8::ffff:" + rig.address.split(":")[-1]})
    assert other.status_code == 202  # another caller has a bucket of its own
