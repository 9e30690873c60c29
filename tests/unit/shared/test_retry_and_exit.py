"""Backoff is exponential, capped and jittered; a loud exit ends the process with a non-zero status."""

from __future__ import annotations

import asyncio
import itertools
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from shared.kafka.retry import RetriesExhausted, backoff_delays, retry
from shared.tasks import EXIT_SOFTWARE, background, cancel_and_wait, every

ROOT = Path(__file__).resolve().parents[3]


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    delays = list(itertools.islice(backoff_delays(initial_s=0.5, max_s=4.0), 8))
    ceilings = [0.5, 1, 2, 4, 4, 4, 4, 4]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert len({round(d, 6) for d in delays[3:]}) > 1, "capped delays still differ: jitter"


async def test_retry_gives_up_after_its_attempts_and_keeps_the_last_error() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError(f"down {calls}")

    with pytest.raises(RetriesExhausted) as info:
        await retry("commit", failing, attempts=3, initial_s=0.001, max_s=0.001)
    assert calls == 3 and info.value.step == "commit"
    assert str(info.value) == "commit failed 3 times, last: ConnectionError: down 3"


async def test_retry_cuts_a_hanging_try() -> None:
    async def hang() -> None:
        await asyncio.Event().wait()

    with pytest.raises(RetriesExhausted) as info:
        await asyncio.wait_for(retry("fetch", hang, attempts=2, initial_s=0.001, max_s=0.001, timeout_s=0.05), 2)
    assert isinstance(info.value.last, TimeoutError)


async def test_a_background_task_that_dies_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        raise RuntimeError("relay crashed")

    with caplog.at_level(logging.ERROR, logger="shared.tasks"):
        async with background(boom(), name="relay"):
            await asyncio.sleep(0.01)
    assert any("background task relay died" in r.getMessage() for r in caplog.records)


async def _swallows_one_cancel(swallowed: list[int]) -> int:
    """A round of a library that turns one cancel into an error of its own and carries on (redis-py's timeouts,
    `asyncio.wait_for` on 3.11 when the cancel lands as its inner call ends)."""
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        if swallowed:
            raise
        swallowed.append(1)
    return 0


async def test_a_loop_that_swallows_a_cancel_is_cancelled_again() -> None:
    swallowed: list[int] = []
    task = asyncio.create_task(every(0.001, lambda: _swallows_one_cancel(swallowed), what="reconcile"))
    await asyncio.sleep(0.05)  # inside a round
    task.cancel()  # what the lifespans did: one cancel, then gather
    done, _ = await asyncio.wait([task], timeout=0.5)
    assert not done and swallowed == [1], "one cancel is lost: the loop runs on"
    assert await cancel_and_wait([task], again_s=0.05) == set()
    assert task.cancelled()


async def test_a_task_that_will_not_stop_is_named_and_left(caplog: pytest.LogCaptureFixture) -> None:
    released = False

    async def stubborn() -> None:
        while not released:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                pass

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0.01)  # inside its loop
    with caplog.at_level(logging.ERROR, logger="shared.tasks"):
        assert await cancel_and_wait([task], grace_s=0.2, again_s=0.05) == {task}
    assert any("task stubborn still running" in r.getMessage() for r in caplog.records)
    released = True  # not left running past the test
    await cancel_and_wait([task])


@pytest.mark.parametrize("sigterm", ["handled", "ignored"])
def test_exit_process_ends_a_real_process_with_a_non_zero_status(sigterm: str) -> None:
    """As under `shared.http.serve` (SIGTERM -> exit 0), or with SIGTERM ignored (the watchdog ends it)."""
    handler = "lambda *_: sys.exit(0)" if sigterm == "handled" else "signal.SIG_IGN"
    code = ("import signal, sys, time\n"
            f"signal.signal(signal.SIGTERM, {handler})\n"
            "from shared.tasks import exit_process\n"
            "exit_process('consumer g gave up', grace_s=0.5)\n"
            "time.sleep(10)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert run.returncode == EXIT_SOFTWARE == 70
    assert "exiting with status 70: consumer g gave up" in run.stderr
