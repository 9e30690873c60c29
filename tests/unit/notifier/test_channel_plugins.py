"""Channel plugins: the signed webhook (a receiver's check), Slack Block Kit, secrets from the environment never
logged, a stable dedupe key per notice, concurrent sends, expiry. E-mail: tests/integration/notifier/test_email_channel.py."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.notifier.channel_plugins import DELIVERY_HEADER, verify_notice
from services.notifier.channels import ChannelSender, DeliveryError
from services.notifier.models import Incident
from services.notifier.policy import NotifierPolicy
from services.notifier.settings import ChannelSecrets, NotifierSettings

SECRET = "whsec_test-secret-42"
INC = Incident(incident_id="inc-1", service="demo", trigger="error_rate_high", episode_id="ep", title="demo: errors",
               severity="major", opened_at=datetime.now(UTC))


def _policy(**channel: Any) -> NotifierPolicy:
    return NotifierPolicy.model_validate({"channels": {"oncall_page": channel},
                                          "webhook": {"attempts": 2, "backoff": 0.001, "timeout": 2}})


def _capture() -> tuple[list[httpx.Request], httpx.AsyncClient]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)
    return seen, httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_webhook_is_signed_and_the_receiver_check_refuses_tampering_and_replays() -> None:
    seen, http = _capture()
    async with http:
        sender = ChannelSender(policy=_policy(kind="webhook", url="https://pager.example.test/hook"), http=http,
                               secrets={"oncall_page": ChannelSecrets(secret=SECRET)})  # type: ignore[arg-type]
        await sender.send(channel="oncall_page", recipient="alice", message="[L2] page", incident=INC)
    [req] = seen
    body, now = req.content, datetime.now(UTC)
    assert json.loads(body)["message"] == "[L2] page" and json.loads(body)["incident"]["incident_id"] == "inc-1"
    assert verify_notice(secret=SECRET, headers=dict(req.headers), body=body, now=now)
    assert not verify_notice(secret=SECRET, headers=dict(req.headers), body=body.replace(b"L2", b"L3"), now=now)
    assert not verify_notice(secret="other", headers=dict(req.headers), body=body, now=now)
    assert not verify_notice(secret=SECRET, headers=dict(req.headers), body=body, now=now + timedelta(minutes=6))
    assert not verify_notice(secret=SECRET, headers={}, body=body, now=now)


async def test_the_same_notice_has_the_same_delivery_key_on_every_try() -> None:
    seen, http = _capture()
    async with http:
        sender = ChannelSender(policy=_policy(url="https://pager.example.test/hook"), http=http)
        for message in ("a", "a", "b"):
            await sender.send(channel="oncall_page", recipient="alice", message=message, incident=INC)
    keys = [r.headers[DELIVERY_HEADER] for r in seen]
    assert keys[0] == keys[1] != keys[2] and json.loads(seen[0].content)["delivery_id"] == keys[0]


async def test_slack_gets_block_kit_with_a_text_fallback() -> None:
    seen, http = _capture()
    async with http:
        sender = ChannelSender(policy=_policy(kind="slack"), http=http,
                               secrets={"oncall_page": ChannelSecrets(url="https://hooks.slack.test/T0/B0/xyz")})  # type: ignore[arg-type]
        await sender.send(channel="oncall_page", recipient="alice", message="*L2* demo <down> & out", incident=INC)
    [req] = seen
    body = json.loads(req.content)
    assert str(req.url) == "https://hooks.slack.test/T0/B0/xyz" and body["text"] == "*L2* demo &lt;down&gt; &amp; out"
    assert [b["type"] for b in body["blocks"]] == ["section", "context"]
    assert body["blocks"][0]["text"] == {"type": "mrkdwn", "text": "*L2* demo &lt;down&gt; &amp; out"}
    assert "severity *major*" in body["blocks"][1]["elements"][0]["text"]


def test_a_slack_channel_without_a_url_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="oncall_page: kind slack needs a url"):
        ChannelSender(policy=_policy(kind="slack"), http=httpx.AsyncClient())


def test_channel_url_and_secret_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_CHANNELS__ONCALL_PAGE__URL", "https://hooks.slack.test/T0/env")
    monkeypatch.setenv("NOTIFIER_CHANNELS__ONCALL_PAGE__SECRET", SECRET)
    settings = NotifierSettings()
    got = settings.channels["oncall_page"]
    assert got.url is not None and got.url.get_secret_value() == "https://hooks.slack.test/T0/env"
    assert got.secret is not None and got.secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings) and "T0/env" not in repr(settings)


async def test_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        sender = ChannelSender(policy=_policy(kind="webhook"), http=http, secrets={
            "oncall_page": ChannelSecrets(url="https://pager.test/tok-999", secret=SECRET)})  # type: ignore[arg-type]
        with pytest.raises(DeliveryError) as info:
            await sender.send(channel="oncall_page", recipient="alice", message="x", incident=None)
    assert "tok-999" not in caplog.text + str(info.value) and SECRET not in caplog.text + str(info.value)


async def test_a_hanging_channel_does_not_hold_up_the_others(env: Any) -> None:
    """The relay sends due notices together: the stakeholder notice goes out while the page still hangs."""
    release = asyncio.Event()
    sent: list[str] = []

    class Sender:
        async def send(self, *, channel: str, recipient: str, message: str, incident: Incident | None) -> None:
            if channel == "status_page":
                await asyncio.wait_for(release.wait(), timeout=5)
            sent.append(channel)
            if channel == "stakeholder":
                release.set()

    env.svc.sender = Sender()
    from tests.unit.notifier.test_api import fired  # noqa: PLC0415 - the same trigger
    await env.svc.open_incident(fired())
    assert sent.index("stakeholder") < sent.index("status_page")


async def test_an_undelivered_notice_expires(env: Any) -> None:
    from tests.unit.notifier.test_api import fired  # noqa: PLC0415
    env.sender.fail_channels = {"stakeholder"}
    await env.svc.open_incident(fired())
    env.clock.advance(env.svc.policy.webhook.expire_after + 1)
    await env.svc.dispatch()
    [rec] = [d for d in env.store.delivery_records if d.channel == "stakeholder"]
    assert rec.status == "failed" and rec.attempts == 2
