"""Runs the faults one after another under steady load and measures each (see docs/chaos.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from chaos.faults import FAULTS, FLAGS_MARKED_DOWN_S, Fault, inflict
from chaos.load import FLAG, Load
from chaos.observe import HealthWatch, TopicWatch
from chaos.phase import Phase
from chaos.result import FaultResult, TriggerCheck
from chaos.stack import Stack

__all__ = ["Runner"]

log = logging.getLogger(__name__)


async def _until(check: Callable[[], Awaitable[bool]], *, timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)


@dataclass
class Runner:
    stack: Stack
    seconds: float = 30.0
    lead: float = 2.0
    run: int = field(default_factory=lambda: random.getrandbits(40) | 1 << 40)
    phase: Phase = field(init=False)
    load: Load = field(init=False)
    topics: TopicWatch = field(init=False)
    health: HealthWatch = field(init=False)
    http: httpx.AsyncClient = field(init=False)
    flag_before: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.phase = Phase("start", self._service("start"))

    def _service(self, slug: str) -> str:
        return f"chaos-{self.run:x}-{slug}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Runner]:
        s = self.stack
        self.topics = TopicWatch(s.bootstrap, self.run, prefix=s.topic_prefix)
        self.health = HealthWatch(s.front, s.healthz())
        self.load = Load(front=s.front, demo=s.demo, bootstrap=s.bootstrap, run=self.run, current=lambda: self.phase,
                         topic_prefix=s.topic_prefix, demo_instances=s.demo_instances())
        async with contextlib.AsyncExitStack() as stack:
            self.http = await stack.enter_async_context(httpx.AsyncClient(timeout=5.0))
            self.flag_before = await self._flag()
            stack.push_async_callback(self._restore)
            await stack.enter_async_context(self.topics.running())
            await stack.enter_async_context(self.health.running())
            await stack.enter_async_context(self.load.running())
            yield self

    async def _flag(self) -> dict[str, object]:
        r = await self.http.get(f"{self.stack.front}/api/flags/{FLAG}", headers=self._admin())
        r.raise_for_status()
        body: dict[str, object] = r.json()
        return body

    def _admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.admin_token}"}

    async def _restore(self) -> None:
        """Leave the stack as we found it: everything started and resumed, the flag as it was."""
        await self.stack.restore(paused={f.program for f in FAULTS if f.action == "pause"})
        before = self.flag_before
        verb = "enable" if before.get("state") == "ENABLED" else ("kill" if before.get("killed") else "disable")
        await _until(lambda: self._post_ok(f"/api/flags/{FLAG}/{verb}"), timeout=30, every=1.0)
        await self.wait_healthy(60)

    async def _post_ok(self, path: str) -> bool:
        try:
            r = await self.http.post(f"{self.stack.front}{path}", json={"reason": "chaos run: restore"},
                                     headers=self._admin())
        except httpx.HTTPError:
            return False
        return r.is_success

    async def wait_healthy(self, timeout: float) -> bool:
        return await _until(self._healthy_now, timeout=timeout, every=0.5)

    async def _healthy_now(self) -> bool:
        return not await self.health.check(self.http)

    # ---- the flag ------------------------------------------------------------------------
    async def _set_flag(self, *, enabled: bool, timeout: float) -> bool:
        """The runbook's Step 1 call (no token: loopback) to kill; the admin token to turn it back on."""
        headers = self._admin() if enabled else {}
        body = {"feature": FLAG, "enabled": enabled}
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = await self.http.post(f"{self.stack.front}/api/system/status", json=body, headers=headers)
                code = str(r.status_code)
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            if not enabled:
                self.phase.kill_codes.append(code)
            if code.startswith("2"):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(1.0)

    async def _kill(self, phase: Phase, *, timeout: float) -> None:
        phase.kill_at = time.time()
        if await self._set_flag(enabled=False, timeout=timeout):
            phase.kill_ok_at = time.time()

    async def _all_on(self) -> bool:
        last = self.phase.last
        return bool(last) and all(v is True for v in last.values())

    # ---- one fault -----------------------------------------------------------------------
    async def run_fault(self, fault: Fault) -> FaultResult:
        seconds = self.seconds if fault.timed else 0.0
        phase = self.phase = Phase(fault.slug, self._service(fault.slug))
        self.load.set_service(phase.service)
        await self._set_flag(enabled=True, timeout=30)
        await _until(self._all_on, timeout=15)
        phase.observers.clear()
        await asyncio.sleep(self.lead)
        injected = asyncio.Event()
        task = asyncio.create_task(inflict(fault, self.stack, seconds=seconds, injected=injected))
        await asyncio.wait([task, asyncio.ensure_future(injected.wait())], return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(min(1.0, seconds / 4))
        kill = asyncio.create_task(self._kill(phase, timeout=seconds + 30))
        # an app that (re)starts once the kill was accepted or seen, during the fault, must serve it too
        await _until(lambda: _true(task.done() or phase.kill_ok_at is not None or "sdk0" in phase.seen),
                     timeout=seconds + 30)
        async with self.load.fresh_sdk():
            started, restored, back = await task
            await kill
            # from the kill for a kill -9 (supervisord's restart is part of it), else from undoing the fault
            t0 = started if fault.action == "kill9" else restored
            healthy = await self.wait_healthy(90) and await _until(
                lambda: _true(self.health.healthy_since(t0) is not None), timeout=10)
            healthy_at = self.health.healthy_since(t0) if healthy else None
            await _until(lambda: self._seen_all(phase), timeout=10)
        triggers = await self._wait_triggers(fault, phase, timeout=60)
        counts = await self._drain(phase)
        kill_at = phase.kill_at or started
        hung_until = None
        if fault.program == "flags" and fault.action == "pause":  # the other instance takes it once HAProxy sees
            grace, hung_until = FLAGS_MARKED_DOWN_S, started + FLAGS_MARKED_DOWN_S
        else:
            flags_back = self.health.back_at("flags", since=started) if fault.program == "flags" else None
            grace = max(0.0, flags_back - kill_at) if flags_back else 0.0
        return FaultResult.of(fault=fault, phase=phase, seconds=seconds, started=started,
                              restored=started if fault.action == "kill9" else restored,
                              back=back, healthy_at=healthy_at, kill_grace_s=grace, hung_until=hung_until, unhealthy=self.health.unhealthy_between(started, time.time()),
                              triggers=triggers, **counts)

    async def _seen_all(self, phase: Phase) -> bool:
        return bool(phase.observers) and phase.observers <= set(phase.seen)

    async def _wait_triggers(self, fault: Fault, phase: Phase, *, timeout: float) -> list[TriggerCheck]:
        def checks() -> list[TriggerCheck]:
            seen = [t for t in self.topics.triggers if t.at >= phase.started]
            return [TriggerCheck.of(service, trigger, seen) for service, trigger in fault.expect]

        async def done() -> bool:
            fired = {(t.service, t.trigger, t.episode) for t in self.topics.triggers
                     if t.at >= phase.started and t.kind == "fired"}
            return all(c.fired and c.cleared for c in checks()) and all(
                any(c.service == s and c.trigger == tr and c.episode == e and c.kind == "cleared"
                    for c in self.topics.triggers) for s, tr, e in fired)
        await _until(done, timeout=timeout, every=0.5)
        others = [t for t in self.topics.triggers if t.at >= phase.started
                  and (t.service, t.trigger) not in set(fault.expect)]
        return checks() + [TriggerCheck.of(t.service, t.trigger, others, expected=False)
                           for t in {(t.service, t.trigger): t for t in others}.values()]

    async def _drain(self, phase: Phase) -> dict[str, Any]:
        """Stop attributing telemetry to this fault, wait until its events are in, count them."""
        self.load.set_service(self._service(f"{phase.name}-after"))
        svc = phase.service
        await _until(lambda: _true(self.load.pending(svc) == 0), timeout=45)
        mine = {k: p for k, p in self.load.book.items() if p.service == svc}
        await _until(lambda: _true(all(self.topics.copies[k] for k, p in mine.items() if p.acked)), timeout=15)
        in_topic = {k: p for k, p in mine.items() if self.topics.copies[k]}
        topic_requests = sum(p.count for p in in_topic.values())
        t0 = time.monotonic()
        sla = await self._sla_count(svc, want=topic_requests)
        settle = time.monotonic() - t0
        return {
            "produced": len(mine), "produced_requests": sum(p.count for p in mine.values()),
            "sdk_dropped": sum(1 for p in mine.values() if p.acked is False),
            "in_topic": len(in_topic), "duplicates": sum(self.topics.copies[k] - 1 for k in in_topic),
            "topic_requests": topic_requests, "sla_requests": sla, "sla_settle_s": round(settle, 1),
        }

    async def _sla_count(self, service: str, *, want: int) -> int | None:
        """Requests the SLA processor counted for `service` (last 5 min), once it stops changing."""
        seen: list[int | None] = []

        async def settled() -> bool:
            try:
                r = await self.http.get(f"{self.stack.front}/api/sla/{service}")
                seen.append(r.json()["last_5m"]["count"] if r.status_code == 200 else None)
            except (httpx.HTTPError, ValueError, KeyError):
                seen.append(None)
            return count_settled(seen, want)
        await _until(settled, timeout=60, every=0.5)
        return seen[-1] if seen else None


SETTLED_POLLS = 40  # 20 s at one poll every 0.5 s


def count_settled(seen: list[int | None], want: int) -> bool:
    """The SLA count (polled every 0.5 s) is `want`, or has not moved for 20 s. Not 4 s: a killed SLA worker's
    partitions come back after Faust's 10 s session timeout, and the count stands still until then (2026-12-01:
    a run read 380 of 960 as settled after kill -9 sla; the processor had all 960 a little later)."""
    last = seen[-SETTLED_POLLS:]
    return bool(seen) and (seen[-1] == want or (len(last) == SETTLED_POLLS and last[0] is not None
                                                 and len(set(last)) == 1))


def _true(value: bool) -> Awaitable[bool]:
    fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut
