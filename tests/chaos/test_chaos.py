"""A short `make chaos` (docs/chaos.md) against the running native stack: a few faults of a few
seconds under steady load, each measured, then the stack restored. Runs last (conftest.py).

`CHAOS_TEST_FAULTS` (default "kill-flags postgres-stop") and `CHAOS_TEST_SECONDS` (default 6) choose.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import httpx
import pytest

from chaos import FaultResult, Runner, Stack, StackError
from chaos.faults import select
from chaos.observe import HealthWatch

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

FAULTS = os.environ.get("CHAOS_TEST_FAULTS", "kill-flags postgres-stop").split()
SECONDS = float(os.environ.get("CHAOS_TEST_SECONDS", "6"))

# Targets a fault is known to miss (an xfail with the reason, not strict: a pass is reported as XPASS).
# Fixed before: HAProxy re-probes flags every 250 ms while down and retries refused connections (and the
# demo apps and recovery reach flags through it, so a kill never waits for a restarted instance); Faust's
# session timeout is 10 s so a killed sla worker gets its partitions back fast.
KNOWN: dict[tuple[str, str], str] = {}


def cases(target: str) -> list[object]:
    return [pytest.param(f, marks=pytest.mark.xfail(reason=KNOWN[(target, f)], strict=False))
            if (target, f) in KNOWN else f for f in FAULTS]


@pytest.fixture(scope="module")
async def results() -> dict[str, FaultResult]:
    try:
        stack = Stack.load()
        alive = await stack.alive()
    except StackError:
        alive = False
    if not alive:
        pytest.skip("the chaos tests fault the native stack: start it with `make up` (make test does)")
    out: dict[str, FaultResult] = {}
    async with Runner(stack, seconds=SECONDS).running() as runner:
        assert await runner.wait_healthy(120), "the stack is not healthy before the chaos test"
        for fault in select(FAULTS):
            out[fault.slug] = await runner.run_fault(fault)
    assert await _healthy_again(stack), "the stack is not healthy again after the chaos test"
    return out


async def _healthy_again(stack: Stack) -> bool:
    watch = HealthWatch(stack.front, stack.healthz())
    async with httpx.AsyncClient(timeout=2.0) as http:
        for _ in range(120):
            if not await watch.check(http):
                return True
            await asyncio.sleep(0.5)
    return False


def _check(results: dict[str, FaultResult], fault: str, ok: Callable[[FaultResult], bool]) -> None:
    r = results[fault]
    assert ok(r), f"{r.title}: {'; '.join(r.missed())}; {r}"


@pytest.mark.parametrize("fault", cases("lost"))
def test_no_event_is_lost_or_counted_twice(results: dict[str, FaultResult], fault: str) -> None:
    _check(results, fault, lambda r: r.produced > 0 and r.lost == 0 and r.duplicates == 0 and r.sla_delta == 0)


@pytest.mark.parametrize("fault", cases("evaluations"))
def test_no_flag_evaluation_fails(results: dict[str, FaultResult], fault: str) -> None:
    _check(results, fault, lambda r: r.sdk_evals > 0 and r.ofrep_evals > 0
           and r.sdk_failures == 0 and r.ofrep_failures == 0)


@pytest.mark.parametrize("fault", cases("kill"))
def test_the_kill_is_accepted_and_seen_by_every_sdk(results: dict[str, FaultResult], fault: str) -> None:
    _check(results, fault, lambda r: r.kill_in_time and r.kill_seen_by_all and not r.stale
           and "sdk-fresh" in r.observers)


@pytest.mark.parametrize("fault", cases("healthy"))
def test_back_to_healthy(results: dict[str, FaultResult], fault: str) -> None:
    _check(results, fault, lambda r: r.healthy_s is not None and r.healthy_s < 60)


@pytest.mark.parametrize("fault", cases("triggers"))
def test_the_right_trigger_fires_and_clears_once(results: dict[str, FaultResult], fault: str) -> None:
    _check(results, fault, lambda r: all(t.ok for t in r.triggers))
