"""Stopping the health service must not drop a verdict it has already shown.

CI caught it (stop 18): `/api/system/status` said billing was `down`, the service stopped at
once, and the HealthCheckCompleted(down) that went with it never reached Kafka: the runner's
task was cancelled in the middle of publishing the cycle's verdicts. A stop now waits for the
cycle in flight (bounded by `stop_grace_s`) and cancels only between cycles."""

from __future__ import annotations

import asyncio
from typing import Any

from services.health.config import parse_config
from services.health.runner import ProbeRunner
from services.health.service import ProbeResult
from shared.events import Event
from shared.testing import InMemoryPublisher

PASS = ProbeResult("pass", 1.0, 1.0, "ms", "")


class PassingProber:
    async def probe(self, target: Any, timeout_s: float) -> ProbeResult:
        return PASS


class GatedPublisher(InMemoryPublisher):
    """Publishing waits until the test opens the gate, like a broker that is slow to ack."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        self.started.set()
        await self.gate.wait()
        await super().publish(event, topic=topic)


def config() -> Any:
    return parse_config({"interval_seconds": 0.05, "targets": [
        {"name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9}]}, env={})


async def test_a_stop_during_a_publish_lets_the_verdict_reach_the_broker() -> None:
    pub = GatedPublisher()
    runner = ProbeRunner(config(), prober=PassingProber(), publisher=pub)  # type: ignore[arg-type]
    ctx = runner.running()
    await ctx.__aenter__()
    await asyncio.wait_for(pub.started.wait(), 5)
    assert runner.states["shop"].state == "up"  # shown to readers before it is published
    stopping = asyncio.create_task(ctx.__aexit__(None, None, None))
    await asyncio.sleep(0.05)
    assert not stopping.done()  # the stop waits for the cycle in flight
    pub.gate.set()
    await asyncio.wait_for(stopping, 5)
    assert [e.target for _, e in pub.published] == ["shop"]  # type: ignore[attr-defined]


async def test_a_publish_that_never_ends_does_not_hold_the_stop_forever() -> None:
    pub = GatedPublisher()
    runner = ProbeRunner(config(), prober=PassingProber(), publisher=pub,  # type: ignore[arg-type]
                         stop_grace_s=0.2)
    ctx = runner.running()
    await ctx.__aenter__()
    await asyncio.wait_for(pub.started.wait(), 5)
    await asyncio.wait_for(ctx.__aexit__(None, None, None), 5)
    assert pub.published == []


async def test_a_stop_between_cycles_is_immediate_and_starts_no_new_cycle() -> None:
    pub = InMemoryPublisher()
    runner = ProbeRunner(config(), prober=PassingProber(), publisher=pub,  # type: ignore[arg-type]
                         interval_s=30.0)
    async with runner.running():
        await runner.wait_cycles(1, timeout_s=5)
    cycles = runner.cycles
    await asyncio.sleep(0.05)
    assert runner.cycles == cycles == 1
