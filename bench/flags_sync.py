"""Kill seen by a flagd in-process provider (Python, over our flagd sync gRPC) beside our SDK (FlagClient over SSE).

The flags service runs in its own process on loopback (own schema / key prefix / topic prefix, dropped after).
Both clients follow it at once; each of 100 kills (kill, enable, kill, ...) is timed from the kill call
being sent to each client serving `off` (the flagd provider's configuration-changed event, our SDK's on_change;
the figure includes the Postgres commit; both often serve off before the call has returned),
so the ratio flagd / SDK is measured in the same run on the same kills. Needs Postgres and Redis (`make up`).
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

import httpx

from bench.flags import TOKEN, _free_port, flags_service
from bench.report import record
from sdk.flags import FlagClient

KILLS = 200  # kill, enable, kill, ...: 100 kills measured
KEY = "gamification"


class FlagdSide:
    """The official flagd provider in IN_PROCESS mode; stamps the moment it serves each value."""

    def __init__(self, sync_port: int) -> None:
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType
        from openfeature.event import ProviderEvent

        self.provider = FlagdProvider(resolver_type=ResolverType.IN_PROCESS, host="127.0.0.1", port=sync_port,
                                      deadline_ms=10_000)
        api.set_provider_and_wait(self.provider, domain="bench-flagd-sync")
        self.client = api.get_client("bench-flagd-sync")
        self.stamp: dict[bool, float] = {}
        self.seen = {True: threading.Event(), False: threading.Event()}
        self.client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, self._changed)

    def _changed(self, _details: Any) -> None:
        value = self.client.get_boolean_value(KEY, False)
        if not self.seen[value].is_set():
            self.stamp[value] = time.perf_counter()
            self.seen[value].set()

    async def wait(self, value: bool) -> None:
        if not await asyncio.to_thread(self.seen[value].wait, 5):
            raise TimeoutError(f"the flagd provider did not serve {value} within 5 s")


class SdkSide:
    def __init__(self, client: FlagClient) -> None:
        self.client = client
        self.stamp: dict[bool, float] = {}
        self.seen = {True: asyncio.Event(), False: asyncio.Event()}
        client.on_change(self._changed)

    def _changed(self, key: str, flag: Any) -> None:
        if key == KEY and flag is not None:
            value = self.client.get_boolean(KEY, not flag.enabled)
            if not self.seen[value].is_set():
                self.stamp[value] = time.perf_counter()
                self.seen[value].set()

    async def wait(self, value: bool) -> None:
        await asyncio.wait_for(self.seen[value].wait(), 5)


def _report(name: str, delays: list[float]) -> float:
    q = statistics.quantiles(delays, n=100)
    p50 = statistics.median(delays)
    print(f"  {name:<38} p50 {p50:6.2f} ms   p99 {q[98]:6.2f} ms   max {max(delays):6.2f} ms")
    return p50


async def kills(base: str, sync_port: int) -> None:
    async with FlagClient(base) as client, httpx.AsyncClient(base_url=base, headers={
            "Authorization": f"Bearer {TOKEN}"}) as admin:
        sdk, flagd = SdkSide(client), FlagdSide(sync_port)
        try:
            (await admin.post(f"/api/flags/{KEY}/enable")).raise_for_status()
            await asyncio.gather(sdk.wait(True), flagd.wait(True))
            ours, theirs, calls = [], [], []
            for i in range(KILLS):
                off = i % 2 == 0
                want = not off
                for side in (sdk, flagd):
                    side.seen[want].clear()
                sent = time.perf_counter()
                r = await admin.post(f"/api/flags/{KEY}/{'kill' if off else 'enable'}")
                returned = time.perf_counter()
                r.raise_for_status()
                await asyncio.gather(sdk.wait(want), flagd.wait(want))
                if off:
                    ours.append((sdk.stamp[want] - sent) * 1000)
                    theirs.append((flagd.stamp[want] - sent) * 1000)
                    calls.append((returned - sent) * 1000)
        finally:
            flagd.provider.shutdown()
    print(f"kill seen, {len(ours)} kills, from the kill call being sent to the client serving off:")
    _report("the kill call itself (HTTP + commit)", calls)
    base_p50 = _report("our SDK (FlagClient, SSE)", ours)
    flagd_p50 = _report("flagd in-process provider (gRPC)", theirs)
    print(f"  ratio flagd / SDK p50: {flagd_p50 / base_p50 if base_p50 else float('inf'):.2f}x")
    record(f"kill seen by our SDK (SSE), p50 of {len(ours)}", base_p50, "ms",
           baseline="flagd in-process provider (gRPC), p50", baseline_value=flagd_p50, lower_is_better=True,
           note=f"p99 {statistics.quantiles(ours, n=100)[98]:.2f} ms")


async def main() -> None:
    sync_port = _free_port()
    async with flags_service("benchsync", FLAGS_SYNC_PORT=str(sync_port)) as (base, _):
        await kills(base, sync_port)

if __name__ == "__main__":
    asyncio.run(main())
