"""Runs every probe each interval, debounces, and publishes one HealthCheckCompleted per verdict.

A target with no verdict yet (or down and never seen up) is re-probed every
`settle_interval_seconds` between the full cycles; results while it is `unknown` are not
published (the event's state is up or down, and the SLA counts it as availability)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from services.health.config import HealthConfig
from services.health.probes import Prober
from services.health.service import Hysteresis, ProbeResult, TargetState
from services.health.watchdog import Watchdog
from shared.events import Event, HealthCheckCompleted, utcnow
from shared.kafka import Publisher

__all__ = ["ProbeRunner"]

log = logging.getLogger(__name__)


class ProbeRunner:
    def __init__(self, config: HealthConfig, *, prober: Prober, publisher: Publisher,
                 interval_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, stop_grace_s: float = 5.0) -> None:
        self.config = config
        self.stop_grace_s = stop_grace_s
        self.clock = clock
        self.sleep = sleep
        self.prober = prober
        self.publisher = publisher
        self.interval_s = interval_s or config.interval_seconds
        self.hysteresis = Hysteresis(down_after=config.down_after, up_after=config.up_after)
        self.watchdog = Watchdog(watched={t.name for t in config.targets if t.watchdog}, down_after=config.down_after,
                                 interval_s=self.interval_s, clock=clock)
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
        # held for a whole cycle (probe, verdict, publish): a stop waits for it, then cancels
        # between cycles, so a verdict readers have seen is never left unpublished
        self._in_cycle = asyncio.Lock()
        self._stopping = False

    async def _one(self, target: Any) -> list[Event]:
        """The target's verdict (none while unknown), and the watchdog's trigger when it makes one."""
        async with self._semaphore:
            result: ProbeResult = await self.prober.probe(target, target.timeout_seconds or self.config.timeout_seconds)
        now = utcnow()
        state = self.hysteresis.observe(self.states[target.name], result, now)
        if state.state == "unknown":
            return []
        return [HealthCheckCompleted(
            service=target.service, target=target.name, kind=target.kind, status=result.status,
            state=state.state, latency_ms=result.latency_ms, observed_value=result.observed_value,
            observed_unit=result.observed_unit, message=result.message[:500], consecutive=state.consecutive,
        ), *self.watchdog.observe(target.name, state, now=now)]

    async def run_cycle(self, targets: Sequence[Any] | None = None) -> list[HealthCheckCompleted]:
        """Probe every target (or those given) once, concurrently and bounded; publish the verdicts (and the
        watchdog's triggers)."""
        start = time.perf_counter()
        probed = await asyncio.gather(*(self._one(t) for t in (self.config.targets if targets is None else targets)))
        events = [e for found in probed for e in found]
        self.last_cycle_ms = (time.perf_counter() - start) * 1000.0
        outcomes = await asyncio.gather(*(self.publisher.publish(e) for e in events), return_exceptions=True)
        failed = [e for e, o in zip(events, outcomes, strict=True) if isinstance(o, BaseException)]
        if failed:
            self.publish_failures += len(failed)
            for e in failed:
                self.watchdog.unsent(e)
            error = next(o for o in outcomes if isinstance(o, BaseException))
            log.warning("could not publish %d of %d check results: %s", len(failed), len(events),
                        type(error).__name__)
        self.cycles += 1
        async with self._cycle_done:
            self._cycle_done.notify_all()
        return [e for e in events if isinstance(e, HealthCheckCompleted)]

    async def wait_cycles(self, n: int, timeout_s: float = 30.0) -> None:
        target = self.cycles + n
        async with self._cycle_done:
            await asyncio.wait_for(self._cycle_done.wait_for(lambda: self.cycles >= target), timeout_s)

    def settling(self) -> list[Any]:
        return [t for t in self.config.targets if self.states[t.name].settling]

    async def _cycle(self, targets: Sequence[Any] | None = None) -> None:
        async with self._in_cycle:
            if self._stopping:
                return
            try:
                await self.run_cycle(targets)
            except Exception:  # noqa: BLE001 - one bad cycle must not stop probing
                log.exception("probe cycle failed")

    async def _forever(self) -> None:
        while True:
            started = self.clock()
            await self._cycle()
            while (pending := self.settling()) and self.clock() - started + self.settle_s < self.interval_s:
                await self.sleep(self.settle_s)
                await self._cycle(pending)
            await self.sleep(max(0.0, self.interval_s - (self.clock() - started)))

    @property
    def settle_s(self) -> float:
        return min(self.config.settle_interval_seconds, self.interval_s)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ProbeRunner]:
        task = asyncio.create_task(self._forever(), name="probes")
        try:
            yield self
        finally:
            self._stopping = True
            try:
                await asyncio.wait_for(self._in_cycle.acquire(), self.stop_grace_s)
            except TimeoutError:
                log.warning("stopping with a probe cycle still publishing after %.1fs", self.stop_grace_s)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if self._in_cycle.locked():
                self._in_cycle.release()
