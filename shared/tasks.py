"""Background work: a coroutine for the length of an `async with` block, a periodic round, a loud exit."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["background", "every", "exit_process", "EXIT_SOFTWARE"]

logger = logging.getLogger(__name__)
EXIT_SOFTWARE = 70  # sysexits.h: internal software error
_exiting = threading.Event()


@asynccontextmanager
async def background(coro: Coroutine[Any, Any, Any], *, name: str) -> AsyncIterator[asyncio.Task[Any]]:
    """Start `coro` as a task; on exit cancel it and wait until it has finished. A task that dies is logged."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_report_death)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _report_death(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s died", task.get_name(), exc_info=task.exception())


async def every(interval_s: float, fn: Callable[[], Awaitable[Any]], *, what: str) -> None:
    """Call `fn` every `interval_s` seconds forever; a failed round is logged and the next one runs."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await fn()
        except Exception:  # noqa: BLE001 - one failed round must not stop the loop
            logger.warning("%s round failed", what, exc_info=True)


def exit_process(reason: str, *, status: int = EXIT_SOFTWARE, grace_s: float = 15.0) -> None:
    """End this process with `status` (non-zero) so its supervisor (supervisord, Docker) starts a new one.

    SIGTERM first, so uvicorn drains and lifespans close; `status` replaces the clean exit status at
    interpreter exit, and if the clean path takes longer than `grace_s` the process ends at once.
    """
    logger.critical("exiting with status %d: %s", status, reason)
    if _exiting.is_set():
        return
    _exiting.set()
    atexit.register(_hard_exit, status)
    watchdog = threading.Timer(grace_s, _hard_exit, args=(status,))
    watchdog.daemon = True
    watchdog.start()
    os.kill(os.getpid(), signal.SIGTERM)


def _hard_exit(status: int) -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
