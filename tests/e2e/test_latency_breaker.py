"""latency_high end to end (issue 14): slow responses -> the breaker of the slow dependency open -> fast
failures -> clear; and slow responses with every dependency fast -> no breaker forced, escalated.

Each scenario runs its own demo process (stack/run.sh, the stack's Kafka / Postgres / Redis) under a service
name of its own, so recovery's 2-min cooldown per (service, trigger) and the shared demo's traffic do not
meet these tests. Its database breaker needs 100 000 calls before its own rates count, so slowness is left
to latency_high and recovery (the shared demo's breaker would open by itself); it reports stats every 2 s.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.notifier.service import incident_id_for
from shared.events import TriggerCleared, TriggerFired
from tests.e2e.test_runbook_loop import FRONT, ROOT, admin_token, stack, watch_triggers  # noqa: F401

pytestmark = pytest.mark.e2e
DELAY_MS = 6000.0  # over the runbook's 5 s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: str) -> str:
    return Path(path).read_bytes()[-3000:].decode(errors="replace")


@dataclass
class Demo:
    service: str
    url: str
    proc: subprocess.Popen[bytes]


@pytest.fixture
def demo(stack: None) -> Iterator[Demo]:  # noqa: F811
    service, port = f"e2elat{uuid.uuid4().hex[:8]}", _free_port()
    env = {**os.environ, "E2E_LAT_PORT": str(port), "DEMO_SERVICE": service, "DEMO_DB_BREAKER_MIN_CALLS": "100000",
           "DEMO_STATS_INTERVAL_S": "2", "RATELIMIT_ENABLED": "false", "DEMO_COLOR": "blue"}
    env.pop("DEMO_RELEASE_DIR", None)
    log = open(ROOT / ".stack" / f"e2e-{service}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(ROOT / "stack" / "run.sh"), "demo-e2e", "E2E_LAT_PORT", "python", "-m",
                             "examples.demo"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, f"the demo exited ({proc.returncode}):\n{_tail(log.name)}"
            assert time.monotonic() < deadline, f"the demo did not answer within 30 s:\n{_tail(log.name)}"
            time.sleep(0.2)
        yield Demo(service, url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        os.unlink(log.name)


@dataclass
class Load:
    """`workers` clients in a loop on /api/items, each pausing `pause_s` between requests."""

    http: httpx.AsyncClient
    url: str
    workers: int = 30
    pause_s: float = 0.5
    statuses: list[tuple[float, int, float]] = field(default_factory=list)  # (sent at, status, seconds)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        stop = asyncio.Event()

        async def one() -> None:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = await self.http.get(f"{self.url}/api/items", timeout=30)
                    self.statuses.append((t0, r.status_code, time.monotonic() - t0))
                except httpx.TransportError:
                    self.statuses.append((t0, 0, time.monotonic() - t0))
                await asyncio.sleep(self.pause_s)
        tasks = [asyncio.create_task(one()) for _ in range(self.workers)]
        try:
            yield self
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _faults(http: httpx.AsyncClient, demo: Demo, **faults: Any) -> None:
    r = await http.put(f"{demo.url}/api/faults", json=faults)
    assert r.status_code == 200, r.text


async def _action(http: httpx.AsyncClient, service: str, episode_id: str, *, final: bool,
                  timeout: float) -> dict[str, Any]:
    """Recovery's audit entry for the episode (with `final`: once it is no longer `started`)."""
    deadline = time.monotonic() + timeout
    while True:
        r = await http.get(f"{FRONT}/api/recovery/actions", params={"service": service, "limit": 50})
        assert r.status_code == 200, r.text
        found = [a for a in r.json() if a["episode_id"] == episode_id]
        if found and (not final or found[0]["status"] != "started"):
            return dict(found[0])
        assert time.monotonic() < deadline, f"recovery recorded no {'final ' if final else ''}action for " \
                                            f"{episode_id}: {found}"
        await asyncio.sleep(0.3)


async def _postgres_breaker(http: httpx.AsyncClient, demo: Demo) -> str:
    r = await http.get(f"{demo.url}/api/breakers")
    assert r.status_code == 200, r.text
    return str(r.json()["postgres"]["state"])


async def test_a_slow_database_opens_the_postgres_breaker_then_fast_failures_then_clear(demo: Demo) -> None:
    token = {"Authorization": f"Bearer {admin_token()}"}
    async with httpx.AsyncClient(timeout=30, headers=token) as http, watch_triggers(demo.service) as w:
        load = Load(http, demo.url)
        async with load.running():
            await asyncio.sleep(1)  # clean traffic first
            await _faults(http, demo, slow_db_ms=DELAY_MS)
            injected = time.monotonic()
            await w.until(lambda: bool(w.of("latency_high", TriggerFired)), 45, what="latency_high fired")
            [fired] = w.of("latency_high", TriggerFired)
            fired_at = w.arrived(fired)
            deadline = time.monotonic() + 30
            while await _postgres_breaker(http, demo) != "forced_open":
                assert time.monotonic() < deadline, "recovery did not force the postgres breaker open"
                await asyncio.sleep(0.1)
            opened = time.monotonic()
            action = await _action(http, demo.service, fired.episode_id, final=False, timeout=10)
            assert action["action"] == "open_circuit_breaker" and action["status"] != "skipped", action
            assert "postgres is the slow dependency" in action["detail"], action
            t0 = time.monotonic()
            probe = await http.get(f"{demo.url}/api/items")
            assert probe.status_code == 503 and time.monotonic() - t0 < 1.0, probe.text  # fails fast, not slowly
            await _faults(http, demo, slow_db_ms=0)
            await w.until(lambda: bool(w.of("latency_high", TriggerCleared)), 60, what="latency_high cleared")
            cleared_at = w.arrived(w.of("latency_high", TriggerCleared)[0])
            # the 503s of that breaker may fire error_rate_high: it must not kill features nor open an incident
            for err in w.of("error_rate_high", TriggerFired):
                skipped = await _action(http, demo.service, err.episode_id, final=False, timeout=15)
                assert skipped["status"] == "skipped" and "recovery forced open" in skipped["detail"], skipped
                r = await http.get(f"{FRONT}/api/incidents/{incident_id_for(demo.service, err.episode_id)}")
                assert r.status_code == 404, r.text
        r = await http.get(f"{FRONT}/api/incidents/{incident_id_for(demo.service, fired.episode_id)}")
        assert r.status_code == 200, r.text
        joined = [e["text"] for e in r.json()["timeline"] if e["text"].startswith("joined: ")]
        assert len(joined) == len(w.of("error_rate_high", TriggerFired)), r.json()["timeline"]
    print(f"\nslow database: injected -> latency_high {fired_at - injected:.1f}s; latency_high -> postgres breaker "
          f"forced open {opened - fired_at:.1f}s; open -> latency_high cleared {cleared_at - opened:.1f}s; "
          f"error_rate_high joined: {len(joined)}")


async def test_a_slow_handler_with_a_fast_database_forces_no_breaker_and_escalates(demo: Demo) -> None:
    token = {"Authorization": f"Bearer {admin_token()}"}
    async with httpx.AsyncClient(timeout=30, headers=token) as http, watch_triggers(demo.service) as w:
        load = Load(http, demo.url)
        async with load.running():
            await asyncio.sleep(1)
            await _faults(http, demo, latency_ms=DELAY_MS)
            injected = time.monotonic()
            await w.until(lambda: bool(w.of("latency_high", TriggerFired)), 45, what="latency_high fired")
            [fired] = w.of("latency_high", TriggerFired)
            fired_at = w.arrived(fired)
            action = await _action(http, demo.service, fired.episode_id, final=True, timeout=30)
            decided = time.monotonic()
            assert action["status"] == "failed", action
            assert "no slow dependency: not opening a breaker" in action["detail"], action
            assert await _postgres_breaker(http, demo) == "closed"
            await _faults(http, demo, latency_ms=0)
            await w.until(lambda: bool(w.of("latency_high", TriggerCleared)), 60, what="latency_high cleared")
        assert w.of("error_rate_high") == [], "slow answers are not errors"
        assert all(st == 200 for _, st, _ in load.statuses), {st for _, st, _ in load.statuses}
    print(f"\nslow handler: injected -> latency_high {fired_at - injected:.1f}s; latency_high -> 'no slow "
          f"dependency' recorded {decided - fired_at:.1f}s")
