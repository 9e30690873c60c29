from __future__ import annotations

import logging

import httpx
import pytest

from services.notifier.channels import ChannelSender, DeliveryError
from services.notifier.policy import NotifierPolicy

SECRET_URL = "https://hooks.example.test/T0/secret-token-123"


def _policy(url: str | None) -> NotifierPolicy:
    return NotifierPolicy.model_validate({"channels": {"stakeholder": {"url": url}},
                                          "webhook": {"attempts": 3, "backoff": 0.001, "timeout": 1}})


async def test_log_channel_records_the_message() -> None:
    async with httpx.AsyncClient() as http:
        sender = ChannelSender(policy=_policy(None), http=http)
        await sender.send(channel="stakeholder", recipient="board", message="Investigating", incident=None)
    assert [(m["channel"], m["recipient"], m["message"]) for m in sender.log_channel] == [
        ("stakeholder", "board", "Investigating")]


async def test_webhook_retries_5xx_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503 if len(calls) < 3 else 204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        await ChannelSender(policy=_policy(SECRET_URL), http=http).send(
            channel="stakeholder", recipient="board", message="Investigating", incident=None)
    assert len(calls) == 3 and b'"message":"Investigating"' in calls[-1].content
    assert "secret-token-123" not in caplog.text


async def test_webhook_gives_up_bounded_and_never_logs_the_url(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused")

    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        with pytest.raises(DeliveryError, match="ConnectError") as info:
            await ChannelSender(policy=_policy(SECRET_URL), http=http).send(
                channel="stakeholder", recipient="board", message="x", incident=None)
    assert len(calls) == 3
    assert "secret-token-123" not in caplog.text and "secret-token-123" not in str(info.value)


async def test_webhook_4xx_is_not_retried() -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        with pytest.raises(DeliveryError, match="HTTP 400"):
            await ChannelSender(policy=_policy(SECRET_URL), http=http).send(
                channel="stakeholder", recipient="board", message="x", incident=None)
    assert len(calls) == 1
