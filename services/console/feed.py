"""One poller per console process, shared by every open overview: it reads the upstream status every
`interval_s` while at least one browser listens, re-renders the fragment, and hands it to each listener
only when it changed. No listener, no polling (it stops with the last one and restarts with the next)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

__all__ = ["SharedFeed"]

logger = logging.getLogger(__name__)


class SharedFeed:
    def __init__(self, *, produce: Callable[[], Awaitable[str]], interval_s: float = 1.5) -> None:
        """`produce()` returns the fragment's HTML now (it shows upstream errors itself; an exception is
        logged once and the last fragment kept)."""
        self._produce = produce
        self.interval_s = interval_s
        self._listeners: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task[None] | None = None
        self.latest: str | None = None
        self.latest_at = 0.0
        self.polls = 0

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    async def current(self) -> str:
        """The fragment as of at most one interval ago (a page load between polls does not ask upstream again)."""
        if self.latest is None or time.monotonic() - self.latest_at > self.interval_s:
            await self._tick()
        assert self.latest is not None
        return self.latest

    async def listen(self) -> AsyncGenerator[str, None]:
        """Every changed fragment from now on, the current one first."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._listeners.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="console-overview-poller")
        try:
            yield await self.current()
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)
            if not self._listeners and self._task is not None:
                self._task.cancel()
                self._task = None

    async def _run(self) -> None:
        while self._listeners:
            await asyncio.sleep(self.interval_s)
            before = self.latest
            await self._tick()
            if self.latest is not None and self.latest != before:
                for queue in list(self._listeners):
                    if queue.full():  # a slow browser gets the newest fragment, not a backlog
                        queue.get_nowait()
                    queue.put_nowait(self.latest)

    async def _tick(self) -> None:
        self.polls += 1
        try:
            html = await self._produce()
        except Exception:  # noqa: BLE001 - a render bug must not kill the shared poller: logged, last fragment kept
            logger.exception("overview: rendering the status failed")
            if self.latest is None:
                self.latest = "<p class='bad'>The overview could not be rendered; see the console's log.</p>"
            return
        self.latest, self.latest_at = html, time.monotonic()
