"""The runbook's Step 2 while the health service hangs (SIGSTOP: its port still accepts, nothing answers):
`curl http://localhost:3000/api/health` and `/api/system/status` must tell the operator so within seconds, as
health JSON, not leave the curl waiting out HAProxy's 60 s `timeout server` for an HTML error page.

Against the native stack (`make up`): the health service is paused for a few seconds, then resumed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from chaos import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ANSWERED_WITHIN_S = 8.0  # HAProxy's 5 s server timeout for the health backend, then its answer


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    stack = Stack.load()
    assert await stack.alive(), "the native stack is not running: `make up` (make test starts it)"
    yield stack


@contextlib.asynccontextmanager
async def paused_health(stack: Stack) -> AsyncIterator[None]:
    pid = await stack.pid("safeguard:health")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        async with httpx.AsyncClient(timeout=2) as http:  # answering through the front door again
            for _ in range(60):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{stack.front}/api/system/status")).status_code == 200:
                        break
                await asyncio.sleep(0.5)


def _curl(url: str) -> tuple[int, str, float]:
    started = time.monotonic()
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", url], capture_output=True, text=True, timeout=90)
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body, time.monotonic() - started


async def test_step_2_says_the_health_service_is_not_answering_while_it_hangs(stack: Stack) -> None:
    async with paused_health(stack):
        for attempt in range(2):  # the first waits out the 5 s timeout; later ones too until its checks fail
            for path in ("/api/health", "/api/system/status"):
                code, body, took = await asyncio.to_thread(_curl, f"{stack.front}{path}")
                print(f"health paused, {path}: {code} after {took:.1f} s: {body[:120]}")
                assert took < ANSWERED_WITHIN_S, f"{path}: answered after {took:.1f} s"
                assert code in (503, 504), f"{path}: {code} {body[:200]}"
                doc = json.loads(body)
                assert doc["status"] == "fail" and "health service" in doc["output"], body
