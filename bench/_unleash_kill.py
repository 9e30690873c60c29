"""Kill propagation for bench/unleash.py: from the disable call being sent to each client serving the flag off.

Safeguard: FlagClients (SSE) on the running stack's front door; each client's change listener stamps the time.
Unleash: UnleashClients (polling /api/client/features every `refresh_s`) started at evenly spread phases of
one poll period, watched every millisecond; before each kill a random wait inside one phase step, so the kill
lands at every point of the poll cycle (sending it right after the last re-enable was seen would always land
just after a poll: the worst case every time). Each kill gives one sample per client.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bench._unleash_server import UnleashServer
from sdk.flags import FlagClient

__all__ = ["Delays", "safeguard_kills", "unleash_kills"]

USER = {"targetingKey": "user-1", "email": "user-1@example.com"}
WAIT_S = 60.0  # one kill or re-enable not seen by every client after this: the bench fails


@dataclass(frozen=True, slots=True)
class Delays:
    ms: list[float]
    kills: int
    clients: int

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.ms, n=100, method="inclusive")[98] if len(self.ms) > 1 else self.ms[0]

    def line(self) -> str:
        return (f"p50 {self.p50:9.1f} ms  p99 {self.p99:9.1f} ms  max {max(self.ms):9.1f} ms  "
                f"({len(self.ms)} samples: {self.kills} kills x {self.clients} clients)")


async def _rounds(*, kills: int, flip: Callable[[bool], Awaitable[None]],
                  seen_all: Callable[[bool], Awaitable[list[float]]], pause: Callable[[], float]) -> list[float]:
    """kill, (all see off), enable, (all see on), ...: the delays of every client for every kill, in ms."""
    delays: list[float] = []
    for _ in range(kills):
        await asyncio.sleep(pause())
        sent = time.perf_counter()
        await flip(False)
        stamps = await asyncio.wait_for(seen_all(False), WAIT_S)
        delays += [(s - sent) * 1000 for s in stamps]
        await flip(True)
        await asyncio.wait_for(seen_all(True), WAIT_S)
    return delays


async def safeguard_kills(*, admin_url: str, stream_url: str, token: str, key: str, kills: int,
                          clients: int) -> Delays:
    """The disable / enable calls go to `admin_url`, the SDKs follow `stream_url`."""
    stamps: list[dict[bool, float]] = [{} for _ in range(clients)]
    events = [{True: asyncio.Event(), False: asyncio.Event()} for _ in range(clients)]
    sdks = [FlagClient(stream_url, report_exposures=False) for _ in range(clients)]

    def listener(i: int) -> Callable[[str, Any], None]:
        def changed(changed_key: str, _flag: Any) -> None:
            if changed_key == key:
                value = sdks[i].get_boolean(key, False, USER)
                stamps[i][value] = time.perf_counter()
                events[i][value].set()
        return changed

    async def seen_all(value: bool) -> list[float]:
        await asyncio.gather(*(e[value].wait() for e in events))
        return [s[value] for s in stamps]

    async with httpx.AsyncClient(base_url=admin_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=10) as admin:
        async def flip(on: bool) -> None:
            for e in events:
                e[on].clear()
            (await admin.post(f"/api/flags/{key}/{'enable' if on else 'disable'}",
                              json={"reason": "bench/unleash.py kill propagation"})).raise_for_status()
        try:
            for i, sdk in enumerate(sdks):
                sdk.on_change(listener(i))
                await sdk.start()
            await _serving(lambda: all(sdk.get_boolean(key, False, USER) for sdk in sdks), f"SDKs serving {key} on")
            # a pause of 0-50 ms between kills, so kills do not fall in step with anything periodic
            ms = await _rounds(kills=kills, flip=flip, seen_all=seen_all, pause=lambda: random.uniform(0, 0.05))
        finally:
            for sdk in sdks:
                await sdk.stop()
    return Delays(ms, kills, clients)


async def _serving(check: Callable[[], bool], what: str) -> None:
    """Wait up to WAIT_S for `check` (a stream may be reconnecting: an instance restarted by someone else)."""
    for _ in range(int(WAIT_S * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no {what} after {WAIT_S:.0f} s")


def _unleash_client(server: UnleashServer, refresh_s: int, i: int, directory: str) -> Any:
    from UnleashClient import UnleashClient  # type: ignore[attr-defined]
    from UnleashClient.cache import FileCache
    from UnleashClient.utils import InstanceAllowType
    cache = FileCache(f"bench-unleash-{i}", directory=directory)
    client = UnleashClient(f"{server.base}/api", f"bench-unleash-{i}", instance_id=f"bench-{i}",
                           refresh_interval=refresh_s, disable_metrics=True, disable_registration=True,
                           custom_headers={"Authorization": server.backend}, cache=cache,
                           multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW)
    client.initialize_client()
    return client


async def unleash_kills(*, server: UnleashServer, key: str, refresh_s: int, kills: int, clients: int) -> Delays:
    context = {"userId": USER["targetingKey"], "properties": {"email": USER["email"]}}
    started: list[Any] = []
    directory = tempfile.mkdtemp(prefix="safeguard-bench-unleash-client-")

    async def seen_all(value: bool) -> list[float]:
        stamps: dict[int, float] = {}
        while len(stamps) < len(started):
            for i, client in enumerate(started):
                if i not in stamps and client.is_enabled(key, context) == value:
                    stamps[i] = time.perf_counter()
            await asyncio.sleep(0.001)
        return [stamps[i] for i in range(len(started))]

    async with httpx.AsyncClient(timeout=10) as http:
        async def flip(on: bool) -> None:
            await server.set_enabled(key=key, enabled=on, client=http)
        try:
            for i in range(clients):  # poll phases spread evenly over one period
                started.append(await asyncio.to_thread(_unleash_client, server, refresh_s, i, directory))
                await asyncio.sleep(refresh_s / clients)
            await asyncio.wait_for(seen_all(True), WAIT_S)
            step = refresh_s / clients
            ms = await _rounds(kills=kills, flip=flip, seen_all=seen_all, pause=lambda: random.uniform(0, step))
        finally:
            for client in started:
                client.destroy()
            shutil.rmtree(directory, ignore_errors=True)
    return Delays(ms, kills, clients)
