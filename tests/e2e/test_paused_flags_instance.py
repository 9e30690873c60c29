"""A flags instance that hangs (SIGSTOP: its ports still accept connections, nothing answers) must not hold the
flag streams that go through the front door: HAProxy marks it down (its /readyz times out) and ends the streams
it carried, so every client streams again from the other instance and serves a kill made meanwhile. Without
that, an in-process flagd provider or an SDK on the hung instance would serve a killed flag until it woke.

Against the native stack (`make up`): flags instance 1 is paused for a few seconds, then resumed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable

import grpc
import httpx
import pytest
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc

from chaos import Stack
from sdk.flags import FlagClient
from tests.e2e.paused import paused, stack  # noqa: F401 - `stack` is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

STREAMS = 4        # on one instance or the other: each instance is paused in turn
SEEN_WITHIN_S = 8  # HAProxy's check times out after 1 s, twice, then the client's own reconnect
RUNBOOK_CALL_S = 6  # the kill answered while an instance hangs (a healthy one answers in milliseconds)


@pytest.fixture
async def flag(stack: Stack) -> AsyncIterator[str]:
    key = f"paused-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    async with httpx.AsyncClient(base_url=stack.front, headers=headers, timeout=10) as http:
        r = await http.post("/api/flags", json={"key": key, "state": "ENABLED", "reason": "paused-instance test"})
        assert r.status_code == 201, r.text
        yield key
        await http.delete(f"/api/flags/{key}")


def _paused(stack: Stack, program: str) -> contextlib.AbstractAsyncContextManager[None]:
    return paused(stack, program, ready_url=stack.healthz()[program.split(":")[-1]].replace("/healthz", "/readyz"))


async def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _set(stack: Stack, key: str, *, enabled: bool) -> None:
    """The runbook's call through :3000 (a kill needs no token on loopback; turning on does). Retried while
    HAProxy still sends it to the paused instance."""
    headers = {"Authorization": f"Bearer {stack.admin_token}"} if enabled else {}
    async with httpx.AsyncClient(timeout=3) as http:
        for _ in range(10):
            with contextlib.suppress(httpx.HTTPError):
                r = await http.post(f"{stack.front}/api/system/status", json={"feature": key, "enabled": enabled},
                                    headers=headers)
                if r.status_code == 200:
                    return
            await asyncio.sleep(0.5)
    raise AssertionError(f"{key} enabled={enabled} was not accepted through the front door")


async def _all_see_the_kill(stack: Stack, key: str, serves: Callable[[int], bool | None]) -> None:
    """Each flags instance is paused in turn (the streams are on one or the other), and a kill made while it
    hangs must reach every stream. `serves(i)`: what stream i serves for `key` now (None: nothing yet)."""
    for program in ("safeguard:flags", "safeguard:flags-2"):
        await _set(stack, key, enabled=True)
        assert await _until(lambda: all(serves(i) is True for i in range(STREAMS)), 10), \
            f"the streams do not all serve {key} on: {[serves(i) for i in range(STREAMS)]}"
        async with _paused(stack, program):
            await asyncio.sleep(3)  # the kill is made while the instance hangs, after HAProxy could notice
            await _set(stack, key, enabled=False)
            await _until(lambda: all(serves(i) is False for i in range(STREAMS)), SEEN_WITHIN_S)
            missed = [i for i in range(STREAMS) if serves(i) is not False]
        assert not missed, (f"{program} paused: streams {missed} of {STREAMS} still served {key} "
                            f"{SEEN_WITHIN_S} s after its kill")


async def test_in_process_providers_on_a_hung_instance_stream_again_from_the_other(stack: Stack, flag: str) -> None:
    """flagd sync through HAProxy (:8015), each stream reopened 250 ms after it ends, as a flagd provider does."""
    seen: dict[int, bool] = {}

    async def follow(i: int) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.env['FLAGS_SYNC_PORT']}") as channel:
            stub = sync_pb2_grpc.FlagSyncServiceStub(channel)
            while True:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    async for msg in stub.SyncFlags(sync_pb2.SyncFlagsRequest()):
                        seen[i] = json.loads(msg.flag_configuration)["flags"][flag]["defaultVariant"] == "on"
                await asyncio.sleep(0.25)

    tasks = [asyncio.create_task(follow(i)) for i in range(STREAMS)]
    try:
        await _all_see_the_kill(stack, flag, seen.get)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_sdk_streams_on_a_hung_instance_stream_again_from_the_other(stack: Stack, flag: str) -> None:
    """Our SDK's SSE stream through the front door (:3000)."""
    async with contextlib.AsyncExitStack() as clients:
        sdks = [await clients.enter_async_context(FlagClient(stack.front, report_exposures=False))
                for _ in range(STREAMS)]
        await _all_see_the_kill(stack, flag, lambda i: sdks[i].get_boolean(flag, True) if flag in sdks[i].keys() else None)


async def test_the_runbook_curl_is_accepted_while_a_flags_instance_hangs(stack: Stack, flag: str) -> None:
    """Step 1 of the emergency runbook, verbatim, sent the moment an instance hangs (before HAProxy could mark
    it down): each call is answered with the flag off, within the runbook's seconds, whichever instance
    HAProxy picked."""
    for program in ("safeguard:flags", "safeguard:flags-2"):
        await _set(stack, flag, enabled=True)
        async with _paused(stack, program):
            for attempt in range(3):
                started = time.monotonic()
                out = await asyncio.to_thread(
                    subprocess.run, ["curl", "-s", "-X", "POST", f"{stack.front}/api/system/status",
                                     "-d", json.dumps({"feature": flag, "enabled": False})],
                    capture_output=True, text=True, timeout=30)
                took = time.monotonic() - started
                assert '"enabled":false' in out.stdout, (
                    f"{program} paused, call {attempt + 1}: curl answered {out.stdout[:200]!r} "
                    f"(exit {out.returncode}) after {took:.1f} s")
                assert took < RUNBOOK_CALL_S, f"{program} paused, call {attempt + 1}: answered after {took:.1f} s"


OFREP_WITHIN_S = 2.0  # the chaos run's OFREP clients give up after 2 s (docs/chaos.md)


async def test_ofrep_evaluations_are_answered_while_a_flags_instance_hangs(stack: Stack, flag: str) -> None:
    """OFREP evaluations through the front door, sent the moment an instance hangs (before HAProxy could mark it
    down), each on a new connection so that HAProxy sends some to the hung instance: every one is answered
    within 2 s, from the other instance."""
    async def evaluate(http: httpx.AsyncClient) -> float:
        started = time.monotonic()
        r = await http.post(f"{stack.front}/ofrep/v1/evaluate/flags/{flag}", json={"context": {"targetingKey": "u"}},
                            headers={"Connection": "close"})
        assert r.status_code == 200 and r.json()["value"] is True, r.text
        return time.monotonic() - started

    for program in ("safeguard:flags", "safeguard:flags-2"):
        await _set(stack, flag, enabled=True)
        async with httpx.AsyncClient(timeout=10) as http, _paused(stack, program):
            took = [t for _ in range(3) for t in await asyncio.gather(*(evaluate(http) for _ in range(8)))]
        print(f"{program} paused: {len(took)} OFREP calls, slowest {max(took):.2f} s")
        slow = sorted(t for t in took if t > OFREP_WITHIN_S)
        assert not slow, f"{program} paused: {len(slow)} of {len(took)} OFREP calls took {slow[0]:.1f}-{slow[-1]:.1f} s"
