"""What the tests that hang one of the native stack's programs share: the stack (`make up`) and `paused`
(SIGSTOP the program, SIGCONT it after, and wait until it answers again)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest

from chaos import Stack

__all__ = ["paused", "stack"]


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    stack = Stack.load()
    assert await stack.alive(), "the native stack is not running: `make up` (make test starts it)"
    yield stack


@contextlib.asynccontextmanager
async def paused(stack: Stack, program: str, *, ready_url: str) -> AsyncIterator[None]:
    """`program` (`safeguard:flags`) hangs inside the block: its ports still accept, nothing answers. After it,
    up to 30 s until `ready_url` answers 200 again, so the next test starts from a ready stack."""
    pid = await stack.pid(program)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # restarted meanwhile (recovery's restart of a hung SLA)
            os.kill(pid, signal.SIGCONT)
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(60):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(ready_url)).status_code == 200:
                        break
                await asyncio.sleep(0.5)
