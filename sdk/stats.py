"""`ProcessStatsReported` every few seconds: memory against the limit, pool state, breaker states, and the
latency / slow-call rate of each guarded dependency.

The memory limit is, in order: the one given (an app that wants "90 %" to mean its own
budget), the cgroup limit (v2 `memory.max`, v1 `memory.limit_in_bytes`), the host's RAM.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import psutil

from shared.events import DependencyStats, PoolStats, ProcessStatsReported
from shared.kafka import Publisher
from shared.tasks import background

__all__ = ["ProcessStatsReporter", "memory_limit_bytes"]

log = logging.getLogger(__name__)
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
_NO_LIMIT = 1 << 60


def memory_limit_bytes(configured: int | None = None) -> int:
    if configured:
        return configured
    host = int(psutil.virtual_memory().total)
    for name in _CGROUP_FILES:
        try:
            raw = Path(name).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < min(host, _NO_LIMIT):
            return int(raw)
    return host


class ProcessStatsReporter:
    """Builds and publishes the stats of this process every `interval_s`."""

    def __init__(self, *, service: str, instance: str, interval_s: float = 5.0, memory_limit: int | None = None,
                 pools: Callable[[], list[PoolStats]] = list, breakers: Callable[[], dict[str, str]] = dict,
                 dependencies: Callable[[], list[DependencyStats]] = list) -> None:
        self.service = service
        self.instance = instance
        self.interval_s = interval_s
        self.limit = memory_limit_bytes(memory_limit)
        self.pools = pools
        self.breakers = breakers
        self.dependencies = dependencies
        self._process = psutil.Process(os.getpid())

    def report(self) -> ProcessStatsReported:
        rss = int(self._process.memory_info().rss)
        return ProcessStatsReported(
            service=self.service, instance=self.instance, pid=self._process.pid, rss_bytes=rss,
            memory_limit_bytes=self.limit, memory_percent=round(100.0 * rss / self.limit, 2),
            pools=self.pools(), breakers=self.breakers(), dependencies=self.dependencies(),
        )

    @asynccontextmanager
    async def running(self, publisher: Publisher) -> AsyncIterator[ProcessStatsReporter]:
        async with background(self._forever(publisher), name="process-stats"):
            yield self

    async def _forever(self, publisher: Publisher) -> None:
        while True:
            try:
                await publisher.publish(self.report())
            except Exception:  # noqa: BLE001 - keep reporting; the next tick may get through
                log.exception("could not publish process stats")
            await asyncio.sleep(self.interval_s)
