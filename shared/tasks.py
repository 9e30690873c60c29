"""Background work: a coroutine for the length of an `async with` block, a periodic round, a loud exit."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["background", "cancel_and_wait", "every", "exit_process", "EXIT_SOFTWARE"]

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
        await cancel_and_wait([task])


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, grace_s: float = 10.0,
                          again_s: float = 1.0) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait until they have finished; returns those still running after `grace_s`.

    One cancel is not always enough: a library can swallow a cancel that lands in one of its own timeouts (redis-py,
    `asyncio.wait_for` on 3.11), and a loop whose round caught it runs on for ever, with a plain `gather` waiting
    on it. So a task still running is cancelled again every `again_s`, the way anyio and trio keep a cancel in force
    until the task ends (a task's own cleanup gets `again_s` before the next cancel reaches it); one that outlives
    `grace_s` is logged by name and left, so a shutdown always ends."""
    tasks = list(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    pending = {t for t in tasks if not t.done()}
    while pending and (left := deadline - loop.time()) > 0:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(again_s, left))
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved: what a task died of is its own done-callback's to report
    for t in pending:
        logger.error("task %s still running %.1fs after it was cancelled; left behind", t.get_name(), grace_s)
    return pending


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
