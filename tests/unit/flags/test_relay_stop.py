"""The outbox relay stops when cancelled, even when the cancel lands as it is woken (Kafka connecting
while the app stops): with `asyncio.wait_for` on Python 3.11 the cancel was swallowed and the app's
shutdown hung (seen as a hang of tests/integration/flags/test_degraded.py once the Kafka login made
connecting slower)."""

from __future__ import annotations

import asyncio
from typing import Any

from services.flags.service import FlagService


async def test_the_relay_stops_when_cancelled_as_it_is_woken() -> None:
    for _ in range(50):
        svc = FlagService(repo=Any, cache=None)  # type: ignore[arg-type]  # the relay waits before any repo call
        task = asyncio.create_task(svc.run_relay(interval_s=30))
        await asyncio.sleep(0)
        svc.wake_relay()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        assert done, "the relay did not stop after cancel"
