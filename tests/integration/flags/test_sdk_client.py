"""The SDK flag client against a real flags service: bootstrap, kill propagation, service down, file cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from sdk.flags import FlagClient
from services.flags.app import create_app
from shared.settings import KafkaSettings
from tests.integration.flags.conftest import ADMIN, ThreadServer, drop, flags_settings


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_client_follows_kills_survives_outage_and_reconnects(
        unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str, tmp_path: Path) -> None:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url)
    server = await asyncio.to_thread(ThreadServer(create_app(settings)).start)
    cache = tmp_path / "flags.json"
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=ADMIN) as admin, \
                FlagClient(server.url, cache_path=cache) as client:
            assert client.keys() == ["gamification"]
            assert client.get_boolean("gamification", True) is False  # new flags are off; the kill beats the default
            await admin.post("/api/flags/gamification/enable")
            await until(lambda: client.get_boolean("gamification", False) is True)
            r = await admin.post("/api/system/status", content=b'{"feature": "gamification", "enabled": false}')
            assert r.status_code == 200
            await until(lambda: client.get_boolean("gamification", True) is False)
            assert client.evaluate("gamification").reason == "DISABLED"
            await admin.post("/api/flags", json={"key": "later-flag", "state": "ENABLED"})
            await until(lambda: client.get_boolean("later-flag", False) is True)

            await asyncio.to_thread(server.stop)  # the service goes away: last known flags keep serving
            await until(lambda: not client.connected)
            assert client.get_boolean("later-flag", False) is True
            assert client.get_boolean("gamification", True) is False

            server = await asyncio.to_thread(ThreadServer(create_app(settings), port=server.port).start)
            async with httpx.AsyncClient(base_url=server.url, headers=ADMIN) as admin2:
                await admin2.post("/api/flags/later-flag/kill")
                await admin2.delete("/api/flags/gamification")
            await until(lambda: client.get_boolean("later-flag", True) is False, timeout=20)
            await until(lambda: "gamification" not in client.keys())
        assert cache.exists()
        await asyncio.to_thread(server.stop)

        # service down from the start: the file cache bootstraps the client
        async with FlagClient("http://127.0.0.1:9", cache_path=cache) as offline:
            assert offline.get_boolean("later-flag", True) is False
            assert not offline.connected
    finally:
        await asyncio.to_thread(server.stop)
        await drop(settings, redis_url)


async def test_openfeature_provider_over_the_client(
        unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str) -> None:
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.flag_evaluation import Reason

    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url)
    server = await asyncio.to_thread(ThreadServer(create_app(settings)).start)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=ADMIN) as admin, FlagClient(server.url) as client:
            await admin.post("/api/flags", json={"key": "ramp", "state": "ENABLED"})
            await admin.post("/api/flags/ramp/rollout", json={"percent": 50})
            await until(lambda: client.evaluate("ramp").reason == "TARGETING_MATCH" or
                        client.evaluate("ramp", {"targetingKey": "u"}).reason == "TARGETING_MATCH")
            api.set_provider(client.provider(), domain="sdk-test")
            of = api.get_client("sdk-test")
            details = of.get_boolean_details("gamification", True)
            assert (details.value, details.reason, details.variant) == (False, Reason.DISABLED, "off")
            values = {of.get_boolean_value("ramp", False, EvaluationContext(targeting_key=f"u{i}")) for i in range(50)}
            assert values == {True, False}
            assert of.get_string_details("ramp", "x").error_code.value == "TYPE_MISMATCH"
            assert of.get_boolean_details("nope", True).error_code.value == "FLAG_NOT_FOUND"
    finally:
        await asyncio.to_thread(server.stop)
        await drop(settings, redis_url)
