"""A hung SLA processor pages on call (the health service's watchdog), a hung health service too (the notifier
watches it), and each page ends when the process answers again.

The SLA processor makes every runbook trigger; paused (SIGSTOP: a hung process, which no restart policy sees), it
makes none, so before the watchdog nothing paged anyone however long it hung. Against the native stack (`make up`,
health checks every 30 s, down after 3 failed): the processor is paused until the notifier has an incident for it,
then resumed until the incident is resolved. What a person sees is checked where they would see it: the incident
and its on-call page through :3000, the trigger in the runbook's Step 2 (`/api/system/status`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from chaos import Stack
from tests.e2e.paused import paused, stack  # noqa: F401 - `stack` is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

# 30 s to the next check, 2 more 30 s apart, each waiting out the 5 s probe timeout, then the notifier's consumer
PAGED_WITHIN_S = 30 + 2 * 30 + 3 * 5 + 15
RESOLVED_WITHIN_S = 30 + 30 + 15  # 2 passed checks, then the notifier


async def _until(what: Callable[[], Awaitable[Any]], *, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await what()
        if found:
            return found
        await asyncio.sleep(1)
    raise AssertionError(f"not within {timeout:.0f} s")


async def test_a_hung_sla_processor_pages_on_call_and_is_resolved_when_it_answers(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.front, timeout=10) as http:
        async def watchdog_incidents() -> dict[str, dict[str, Any]]:
            incidents = (await http.get("/api/incidents", params={"days": 1})).json()
            return {i["incident_id"]: i for i in incidents if i["service"] == "sla" and i["trigger"] == "unresponsive"}

        async def watchdog_incident() -> dict[str, Any] | None:
            return next((i for iid, i in (await watchdog_incidents()).items() if iid not in before), None)

        before = await watchdog_incidents()  # earlier runs' (resolved)
        async with paused(stack, "safeguard:sla", ready_url=stack.healthz()["sla"]):
            t0 = time.monotonic()
            inc = await _until(watchdog_incident, timeout=PAGED_WITHIN_S)
            print(f"sla paused: incident {inc['incident_id']} after {time.monotonic() - t0:.0f} s: {inc['title']}")
            assert inc["status"] == "open" and inc["level"] == 2 and inc["severity"] == "minor", inc
            iid = inc["incident_id"]
            pages = await _until(lambda: _pages(http, iid), timeout=15)
            print("paged:", pages[0]["recipient"], pages[0]["message"][:160])
            assert all("[L2 on-call developer]" in p["message"] for p in pages)
            step2 = (await http.get("/api/system/status")).json()
            active = step2["sla"]["active_triggers"]
            assert any(t["service"] == "sla" and t["trigger"] == "unresponsive" for t in active), active
        t1 = time.monotonic()

        async def resolved() -> dict[str, Any] | None:
            doc = (await http.get(f"/api/incidents/{iid}")).json()
            return doc if doc["status"] == "resolved" else None

        doc = await _until(resolved, timeout=RESOLVED_WITHIN_S)
        print(f"sla resumed: resolved after {time.monotonic() - t1:.0f} s")
        assert any(e["kind"] == "detected" and e["actor"] == "health" for e in doc["timeline"]), doc["timeline"]


async def _pages(http: httpx.AsyncClient, iid: str) -> list[dict[str, Any]]:
    return [d for d in (await http.get(f"/api/incidents/{iid}/deliveries")).json() if d["channel"] == "oncall_page"]


HEALTH_PAGED_WITHIN_S = 60 + 10 + 3 + 15  # 60 s of failed reads (every 10 s, 3 s timeout), then the next read


async def test_a_hung_health_service_is_paged_by_the_notifier(stack: Stack) -> None:
    """The watcher's watcher: the health service, paused, is seen by the notifier, which reads it every 10 s."""
    async with httpx.AsyncClient(base_url=stack.front, timeout=10) as http:
        async def health_incidents() -> dict[str, dict[str, Any]]:
            incidents = (await http.get("/api/incidents", params={"days": 1})).json()
            return {i["incident_id"]: i for i in incidents if i["service"] == "health"
                    and i["trigger"] == "unresponsive"}

        async def new_incident() -> dict[str, Any] | None:
            return next((i for iid, i in (await health_incidents()).items() if iid not in before), None)

        before = await health_incidents()
        async with paused(stack, "safeguard:health", ready_url=stack.healthz()["health"]):
            t0 = time.monotonic()
            inc = await _until(new_incident, timeout=HEALTH_PAGED_WITHIN_S)
            print(f"health paused: incident {inc['incident_id']} after {time.monotonic() - t0:.0f} s: {inc['title']}")
            assert inc["status"] == "open" and inc["level"] == 2, inc
            assert await _until(lambda: _pages(http, inc["incident_id"]), timeout=15)
        t1 = time.monotonic()

        async def resolved() -> dict[str, Any] | None:
            doc = (await http.get(f"/api/incidents/{inc['incident_id']}")).json()
            return doc if doc["status"] == "resolved" else None

        doc = await _until(resolved, timeout=30)
        print(f"health resumed: resolved after {time.monotonic() - t1:.0f} s by {doc['resolved_by']}")
        assert doc["resolved_by"] == "notifier"
