"""A hung SLA processor is restarted by recovery (the health service's watchdog fires `unresponsive` for it); a
hung recovery pages on call at once (nothing restarts it), and so does a hung health service (the notifier watches
it); each incident ends when the process answers.

The SLA processor makes every runbook trigger; paused (SIGSTOP: a hung process, which no restart policy sees), it
makes none, so before the watchdog nothing acted however long it hung. Against the native stack (`make up`,
health checks every 30 s, down after 3 failed): the processor is paused and left paused; recovery restarts it
through supervisord (a new PID) and the incident resolves with no one resuming it. What a person sees is checked
where they would see it: the incident, recovery's action and the trigger in the runbook's Step 2
(`/api/system/status`), all through :3000."""

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
# supervisord's stop (SIGTERM, 20 s stopwaitsecs, then SIGKILL) and start, then 2 passed checks 30 s apart
RESTARTED_WITHIN_S = 20 + 30 + 15
RESOLVED_WITHIN_S = 30 + 30 + 15  # 2 passed checks, then the notifier


async def _until(what: Callable[[], Awaitable[Any]], *, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await what()
        if found:
            return found
        await asyncio.sleep(1)
    raise AssertionError(f"not within {timeout:.0f} s")


async def test_a_hung_sla_processor_is_restarted_by_recovery_and_its_incident_resolved(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.front, timeout=10) as http:
        async def restart_done() -> dict[str, Any] | None:
            actions = (await http.get("/api/recovery/actions", params={"service": "sla", "limit": 5})).json()
            return next((a for a in actions if a["episode_id"] == inc["episode_id"]
                         and a["action"] == "restart_process" and a["status"] != "started"), None)

        before = await _unresponsive(http, "sla")  # earlier runs' (resolved)
        pid = await stack.pid("safeguard:sla")
        async with paused(stack, "safeguard:sla", ready_url=stack.healthz()["sla"]):
            t0 = time.monotonic()
            inc = await _until(lambda: _new_incident(http, "sla", before), timeout=PAGED_WITHIN_S)
            print(f"sla paused: incident {inc['incident_id']} after {time.monotonic() - t0:.0f} s: {inc['title']}")
            assert inc["status"] == "open" and inc["severity"] == "minor", inc
            step2 = (await http.get("/api/system/status")).json()
            active = step2["sla"]["active_triggers"]
            assert any(t["service"] == "sla" and t["trigger"] == "unresponsive" for t in active), active
            iid = inc["incident_id"]
            t1 = time.monotonic()
            doc = await _until(lambda: _resolved(http, iid), timeout=RESTARTED_WITHIN_S + RESOLVED_WITHIN_S)
            print(f"sla restarted by recovery: incident resolved {time.monotonic() - t1:.0f} s after it opened, "
                  f"{time.monotonic() - t0:.0f} s after the pause")
            new_pid = await stack.pid("safeguard:sla")
            assert new_pid not in (0, pid), (pid, new_pid)  # never resumed: a new process answers
        action = await _until(restart_done, timeout=10)
        print("recovery:", action["status"], action["detail"][:200], action.get("effect"))
        assert action["status"] == "succeeded" and action["actor"] == "recovery", action
        assert not await _pages(http, iid), "recovery restarted it: level 1 was enough, no one was paged"
        assert doc["level"] == 1 and doc["resolved_by"] == "health", doc
        assert any(e["kind"] == "detected" and e["actor"] == "health" for e in doc["timeline"]), doc["timeline"]


async def test_a_hung_recovery_service_pages_on_call_at_once(stack: Stack) -> None:
    """Recovery cannot restart itself: its `unresponsive` incident escalates to level 2 as it opens
    (`page_at_once: [recovery/unresponsive, ...]`), and the health service resolves it once it answers again."""
    await _paged_at_once(stack, "recovery", paged_within_s=PAGED_WITHIN_S, resolved_within_s=RESOLVED_WITHIN_S,
                         resolved_by="health")


HEALTH_PAGED_WITHIN_S = 60 + 10 + 3 + 15  # 60 s of failed reads (every 10 s, 3 s timeout), then the next read


async def test_a_hung_health_service_is_paged_by_the_notifier(stack: Stack) -> None:
    """The watcher's watcher: the health service, paused, is seen by the notifier, which reads it every 10 s."""
    await _paged_at_once(stack, "health", paged_within_s=HEALTH_PAGED_WITHIN_S, resolved_within_s=30,
                         resolved_by="notifier")


async def _paged_at_once(stack: Stack, service: str, *, paged_within_s: float, resolved_within_s: float,
                         resolved_by: str) -> None:
    """`service` paused: a new `unresponsive` incident at level 2 as it opens, on call paged; resumed: resolved."""
    async with httpx.AsyncClient(base_url=stack.front, timeout=10) as http:
        before = await _unresponsive(http, service)  # earlier runs' (resolved)
        async with paused(stack, f"safeguard:{service}", ready_url=stack.healthz()[service]):
            t0 = time.monotonic()
            inc = await _until(lambda: _new_incident(http, service, before), timeout=paged_within_s)
            print(f"{service} paused: incident {inc['incident_id']} after {time.monotonic() - t0:.0f} s:", inc["title"])
            assert inc["status"] == "open" and inc["level"] == 2 and inc["severity"] == "minor", inc
            pages = await _until(lambda: _pages(http, inc["incident_id"]), timeout=15)
            print("paged:", pages[0]["recipient"], pages[0]["message"][:160])
            assert all("[L2 on-call developer]" in p["message"] for p in pages)
        t1 = time.monotonic()
        doc = await _until(lambda: _resolved(http, inc["incident_id"]), timeout=resolved_within_s)
        print(f"{service} resumed: resolved after {time.monotonic() - t1:.0f} s by {doc['resolved_by']}")
        assert doc["resolved_by"] == resolved_by


async def _pages(http: httpx.AsyncClient, iid: str) -> list[dict[str, Any]]:
    return [d for d in (await http.get(f"/api/incidents/{iid}/deliveries")).json() if d["channel"] == "oncall_page"]


async def _unresponsive(http: httpx.AsyncClient, service: str) -> dict[str, dict[str, Any]]:
    """The `unresponsive` incidents of `service` of the last day, by id."""
    found = (await http.get("/api/incidents", params={"days": 1})).json()
    return {i["incident_id"]: i for i in found if i["service"] == service and i["trigger"] == "unresponsive"}


async def _new_incident(http: httpx.AsyncClient, service: str, before: dict[str, Any]) -> dict[str, Any] | None:
    return next((i for iid, i in (await _unresponsive(http, service)).items() if iid not in before), None)


async def _resolved(http: httpx.AsyncClient, iid: str) -> dict[str, Any] | None:
    doc: dict[str, Any] = (await http.get(f"/api/incidents/{iid}")).json()
    return doc if doc["status"] == "resolved" else None
