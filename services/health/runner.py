"""Runs every probe each interval, debounces, and publishes one HealthCheckCompleted per result."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from services.health.config import HealthConfig
from services.health.probes import Prober
from services.health.service import Hysteresis, ProbeResult, TargetState
from shared.events import HealthCheckCompleted, utcnow
from shared.kafka import Publisher

__all__ = ["ProbeRunner"]

log = logging.getLogger(__name__)


class ProbeRunner:
    def __init__(self, config: HealthConfig, *, prober: Prober, publisher: Publisher,
                 interval_s: float | None = None) -> None:
        self.config = config
        self.prober = prober
        self.publisher = publisher
        self.interval_s = interval_s or config.interval_seconds
        self.hysteresis = Hysteresis(down_after=config.down_after, up_after=config.up_after)
        self.states = {
            t.name: TargetState(name=t.name, service=t.service, kind=t.kind, role=t.role or "service",
                                critical=t.critical)
            for t in config.targets
        }
        self.cycles = 0
        self.last_cycle_ms = 0.0
        self.publish_failures = 0
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._cycle_done = asyncio.Condition()

    async def _one(self, target: Any) -> HealthCheckCompleted:
        async with self._semaphore:
            result: ProbeResult = await self.prober.probe(target, target.timeout_seconds or self.config.timeout_seconds)
        state = self.hysteresis.observe(self.states[target.name], result, utcnow())
        assert state.state is not None
        return HealthCheckCompleted(
            service=target.service, target=target.name, kind=target.kind, status=result.status,  # type: ignore[arg-type]
            state=state.state, latency_ms=result.latency_ms, observed_value=result.observed_value,
            observed_unit=result.observed_unit, message=result.message[:500], consecutive=state.consecutive,
        )

    async def run_cycle(self) -> list[HealthCheckCompleted]:
        """Probe every target once (concurrently, bounded), publish the results."""
        start = time.perf_counter()
        events = await asyncio.gather(*(self._one(t) for t in self.config.targets))
        self.last_cycle_ms = (time.perf_counter() - start) * 1000.0
        outcomes = await asyncio.gather(*(self.publisher.publish(e) for e in events), return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            self.publish_failures += len(failed)
            log.warning("could not publish %d of %d check results: %s", len(failed), len(events),
                        type(failed[0]).__name__)
        self.cycles += 1
        async with self._cycle_done:
            self._cycle_done.notify_all()
        return list(events)

    async def wait_cycles(self, n: int, timeout_s: float = 30.0) -> None:
        target = self.cycles + n
        async with self._cycle_done:
            await asyncio.wait_for(self._cycle_done.wait_for(lambda: self.cycles >= target), timeout_s)

    async def _forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.run_cycle()
            except Exception:  # noqa: BLE001 - one bad cycle must not stop probing
                log.exception("probe cycle failed")
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ProbeRunner]:
        task = asyncio.create_task(self._forever(), name="probes")
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
