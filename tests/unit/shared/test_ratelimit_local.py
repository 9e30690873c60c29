"""shared.ratelimit with local decisions (GCRA in process): 429 + Retry-After, the same per-client keys, and the
background reconciliation that folds other instances' hits in (a fake sync here; real Redis in integration)."""

from __future__ import annotations

import asyncio

from limits import parse
from pydantic import SecretStr

from shared.auth import AuthSettings, Authenticator
from shared.ratelimit import RateLimiter
from shared.ratelimit_local import LocalWindows
from tests.unit.shared.test_ratelimit import _app, _client


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_third_call_is_429_with_retry_after_and_headers() -> None:
    async with _client(_app(RateLimiter(storage=None, default="2/minute", local=True))) as c:
        first = await c.get("/x")
        assert first.headers["ratelimit-policy"] == '"default";q=2;w=60'
        assert first.headers["ratelimit"].startswith('"default";r=1;t=')
        assert (await c.get("/x")).status_code == 200
        refused = await c.get("/x")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 30  # one hit frees every 60 s / 2
    assert refused.headers["ratelimit"].startswith('"default";r=0;')
    assert refused.json()["errorCode"] == "RATE_LIMITED"


async def test_keys_per_verified_token_else_per_address() -> None:
    auth = Authenticator(AuthSettings(admin_token=SecretStr("adm"), client_keys={"shop": SecretStr("k1")}))
    limiter = RateLimiter(storage=None, default="1/minute", identify=auth.verified_identity, local=True)
    async with _client(_app(limiter)) as c:
        assert (await c.get("/x", headers={"X-API-Key": "k1"})).status_code == 200
        assert (await c.get("/x", headers={"Authorization": "Bearer k1"})).status_code == 429  # same client
        assert (await c.get("/x", headers={"Authorization": "Bearer forged"})).status_code == 200  # the address's
        assert (await c.get("/x", headers={"Authorization": "Bearer forged-2"})).status_code == 429
    async with _client(_app(limiter), peer="203.0.113.9") as other:  # another address: its own bucket
        assert (await other.get("/x")).status_code == 200
        assert (await other.get("/x")).status_code == 429


def test_gcra_frees_one_hit_per_interval() -> None:
    clock = _Clock()
    windows, item = LocalWindows(clock=clock), parse("2/minute")
    assert [windows.hit(item, "k").allowed for _ in range(3)] == [True, True, False]
    refused = windows.hit(item, "k")
    assert refused.reset_s == 30 and refused.remaining == 0
    clock.now += 30
    assert windows.hit(item, "k").allowed
    assert not windows.hit(item, "k").allowed
    assert windows.hit(item, "other").allowed


async def test_reconciliation_counts_other_instances_hits() -> None:
    sent: list[tuple[str, int]] = []

    async def sync(item: object, key: str, hits: int) -> float:
        sent.append((key, hits))
        return 8.0  # the shared window: these hits and 6 from other instances

    windows, item = LocalWindows(sync=sync, interval_s=0.01), parse("10/minute")
    assert windows.hit(item, "k").allowed and windows.hit(item, "k").allowed
    await windows.flush()
    assert sent == [("k", 2)]
    assert [windows.hit(item, "k").allowed for _ in range(3)] == [True, True, False]
    await windows.aclose()
    assert sent == [("k", 2), ("k", 2)]


async def test_a_failing_sync_never_blocks_a_decision() -> None:
    gate = asyncio.Event()

    async def stuck(item: object, key: str, hits: int) -> float:
        await gate.wait()
        raise ConnectionError("redis does not answer")

    windows, item = LocalWindows(sync=stuck, interval_s=0.001), parse("3/minute")
    assert [windows.hit(item, "k").allowed for _ in range(4)] == [True, True, True, False]
    await asyncio.sleep(0.01)  # the sync is now waiting on the stuck store
    assert not windows.hit(item, "k").allowed  # decided at once, from memory
    gate.set()
    await windows.aclose()
