"""Background work: a coroutine for the length of an `async with` block, a periodic round."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["background", "every"]

logger = logging.getLogger(__name__)


@asynccontextmanager
async def background(coro: Coroutine[Any, Any, Any], *, name: str) -> AsyncIterator[asyncio.Task[Any]]:
    """Start `coro` as a task; on exit cancel it and wait until it has finished."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def every(interval_s: float, fn: Callable[[], Awaitable[Any]], *, what: str) -> None:
    """Call `fn` every `interval_s` seconds forever; a failed round is logged and the next one runs."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await fn()
        except Exception:  # noqa: BLE001 - one failed round must not stop the loop
            logger.warning("%s round failed", what, exc_info=True)
