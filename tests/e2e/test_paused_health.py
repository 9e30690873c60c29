"""The runbook's Step 2 while the health service hangs (SIGSTOP: its port still accepts, nothing answers):
`curl http://localhost:3000/api/health` and `/api/system/status` must tell the operator so within seconds, as
health JSON, not leave the curl waiting out HAProxy's 60 s `timeout server` for an HTML error page.

Against the native stack (`make up`): the health service is paused for a few seconds, then resumed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time

import pytest

from chaos import Stack
from tests.e2e.paused import paused, stack  # noqa: F401 - `stack` is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ANSWERED_WITHIN_S = 8.0  # HAProxy's 5 s server timeout for the health backend, then its answer


def _paused_health(stack: Stack) -> contextlib.AbstractAsyncContextManager[None]:
    """Ready again once the front door answers for it."""
    return paused(stack, "safeguard:health", ready_url=f"{stack.front}/api/system/status")


def _curl(url: str) -> tuple[int, str, float]:
    started = time.monotonic()
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", url], capture_output=True, text=True, timeout=90)
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body, time.monotonic() - started


async def test_step_2_says_the_health_service_is_not_answering_while_it_hangs(stack: Stack) -> None:
    async with _paused_health(stack):
        for _ in range(2):  # the first waits out the 5 s timeout; later ones too until its checks fail
            for path in ("/api/health", "/api/system/status"):
                code, body, took = await asyncio.to_thread(_curl, f"{stack.front}{path}")
                print(f"health paused, {path}: {code} after {took:.1f} s: {body[:120]}")
                assert took < ANSWERED_WITHIN_S, f"{path}: answered after {took:.1f} s"
                assert code in (503, 504), f"{path}: {code} {body[:200]}"
                doc = json.loads(body)
                assert doc["status"] == "fail" and "health service" in doc["output"], body
