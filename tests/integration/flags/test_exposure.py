"""Exposure counts through a real flags app (own schema, own Redis prefix): OFREP evaluations and SDK reports
become "users in the last hour" (Redis HyperLogLogs per flag and minute), and the store's window on real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import redis.asyncio as aioredis

from sdk.flags import FlagClient
from sdk.flags.exposure import ExposureBuffer, ExposureReporter, key_hash
from services.flags.app import create_app
from services.flags.exposure import ExposureStore
from shared.settings import KafkaSettings
from tests.integration.flags.conftest import ADMIN, Flags, ThreadServer, drop, flags_settings


async def _exposure(c: httpx.AsyncClient, key: str, *, users: int, timeout_s: float = 5.0) -> dict[str, Any]:
    """The exposure answer once it counts about `users` (the recorder flushes every second)."""
    body: dict[str, Any] = {}
    for _ in range(int(timeout_s / 0.1)):
        r = await c.get(f"/api/flags/{key}/exposure")
        assert r.status_code == 200, r.text
        body = r.json()
        if abs(body["users_last_hour"] - users) <= users // 50:  # HLL: exact-ish at small counts, ~0.8 % past
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected about {users} users, last answer {body}")


async def _clean(redis_url: str, prefix: str) -> None:
    r = aioredis.from_url(redis_url)
    keys = [k async for k in r.scan_iter(match=prefix + "exp:*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


async def test_ofrep_evaluations_and_sdk_reports_count_as_users_of_the_last_hour(flags: Flags, redis_url: str) -> None:
    c = flags.client
    try:
        await c.post("/api/flags", json={"key": "ramp"}, headers=ADMIN)
        assert (await c.post("/api/flags/ramp/rollout", json={"percent": 30}, headers=ADMIN)).status_code == 200
        got_on = 0
        for i in range(150):
            r = await c.post("/ofrep/v1/evaluate/flags/ramp", json={"context": {"targetingKey": f"user-{i}"}})
            got_on += r.json()["value"] is True
        for i in range(100):  # the same users again, some through the bulk evaluation: no new user
            await c.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": f"user-{i}"}})
        await c.post("/ofrep/v1/evaluate/flags/ramp", json={"context": {}})  # no targeting key: no user
        body = await _exposure(c, "ramp", users=150)
        assert body["window_s"] == 3600 and body["approximate"] is True
        assert 20 <= got_on <= 80 and abs(body["in"] - got_on) <= 2

        buf = ExposureBuffer()  # what the Python SDK reports from its local evaluations
        for i in range(150, 200):
            buf.add("ramp", key_hash(f"user-{i}"), in_=i % 2 == 0)
        buf.add("no-such-flag", key_hash("x"), in_=True)
        reporter = ExposureReporter(buf)
        await reporter.flush(c)
        assert reporter.sent == 51 and reporter.failed == 0
        body = await _exposure(c, "ramp", users=200)
        assert abs(body["in"] - (got_on + 25)) <= 2
        assert (await c.get("/api/flags/no-such-flag/exposure")).status_code == 404
    finally:
        await _clean(redis_url, flags.settings.cache_prefix)


async def test_a_bad_exposure_batch_is_refused_whole(flags: Flags, redis_url: str) -> None:
    c = flags.client
    ok = {"flag": "gamification", "key_hash": key_hash("u"), "in": False}
    for bad, field in (({**ok, "key_hash": "Alice@example.com"}, "key_hash"), ({**ok, "in": "maybe"}, "in"),
                       ({"flag": "gamification"}, "key_hash"), ({**ok, "user": "alice"}, "user")):
        r = await c.post("/api/flags/_exposures", json=[ok, bad])
        assert r.status_code == 422 and field in r.text, (bad, r.text)
    assert (await c.post("/api/flags/_exposures", content=b"[{")).status_code == 400
    assert (await c.post("/api/flags/_exposures", json=[ok] * 10_001)).status_code == 422
    r = await c.post("/api/flags/_exposures", json=[ok])
    assert r.status_code == 202 and r.json() == {"accepted": 1, "ignored": 0}
    await asyncio.sleep(1.3)
    await _clean(redis_url, flags.settings.cache_prefix)


async def test_the_window_is_the_last_60_minutes_and_keys_expire(redis_url: str, unique: str) -> None:
    now = [1_000_000 * 60.0]
    r = aioredis.from_url(redis_url)
    store = ExposureStore(r, prefix=f"t{unique}:", clock=lambda: now[0])
    try:
        await store.add({"f": ({"a", "b", "c"}, {"a"})})
        now[0] += 30 * 60
        await store.add({"f": ({"c", "d"}, {"d"})})
        assert await store.last_hour("f") == {"users_last_hour": 4, "in": 2, "window_s": 3600, "approximate": True}
        ttl = await r.ttl(store.key("f", int(now[0] // 60), "all"))
        assert 3600 < ttl <= 65 * 60
        now[0] += 31 * 60  # the first minute has left the window
        assert (await store.last_hour("f"))["users_last_hour"] == 2
        assert (await store.last_hour("other"))["users_last_hour"] == 0
    finally:
        keys = [k async for k in r.scan_iter(match=f"t{unique}:exp:*")]
        await r.delete(*keys)
        await r.aclose()


async def test_the_python_sdk_reports_its_local_evaluations_in_the_background(
        unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str) -> None:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url)
    server = await asyncio.to_thread(ThreadServer(create_app(settings)).start)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=ADMIN) as admin, \
                FlagClient(server.url, exposure_interval_s=0.2) as client:
            assert (await admin.post("/api/flags/gamification/rollout", json={"percent": 100})).status_code == 200
            for _ in range(100):
                if client.get_boolean("gamification", False, {"targetingKey": "warm-up"}):
                    break
                await asyncio.sleep(0.05)
            for i in range(30):
                assert client.get_boolean("gamification", False, {"targetingKey": f"sdk-user-{i}"}) is True
            body = await _exposure(admin, "gamification", users=31)
            assert body["in"] == body["users_last_hour"]
            assert client.exposures is not None and client.exposures.failed == 0
    finally:
        await asyncio.to_thread(server.stop)
        await _clean(redis_url, settings.cache_prefix)
        await drop(settings, redis_url)


async def test_redis_down_loses_counts_not_evaluations(
        unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, private_redis: Any) -> None:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, private_redis.url)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://f") as c:
            await c.post("/ofrep/v1/evaluate/flags/gamification", json={"context": {"targetingKey": "before"}})
            await _exposure(c, "gamification", users=1)
            private_redis.stop()
            for i in range(20):
                r = await c.post("/ofrep/v1/evaluate/flags/gamification", json={"context": {"targetingKey": f"u{i}"}})
                assert r.status_code == 200 and r.json()["value"] is False
            r = await c.get("/api/flags/gamification/exposure")
            assert r.status_code == 503 and "Redis" in r.json()["detail"]
            recorder = app.state.exposures
            for _ in range(50):
                if recorder.failed:
                    break
                await asyncio.sleep(0.1)
            assert recorder.failed == 20  # dropped and counted, not kept growing
    finally:
        private_redis.start()
        await drop(settings, private_redis.url)
