"""The runbook loop on the running native stack, driven the way an operator does it.

Demo app behind HAProxy :8100 (blue takes the traffic, green stands by) -> SDK telemetry on Kafka -> the SLA
processor -> `sla.triggers` (read here from the end of the topic, filtered by the demo's service
name, since the stack and its processor are shared with other tests) and `GET :3000/api/sla/demo`.
Flags go through the front door :3000 (admin token for `enable`, the runbook's verbatim curl to
turn the feature off).

Every test is bounded in time and requests, talks to loopback only, and puts back what it changed
(faults removed on both colours, the `gamification` flag in the state it was found in).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.notifier.service import incident_id_for
from shared.events import Event, TriggerCleared, TriggerFired
from shared.kafka.codec import decode
from shared.testing.kafka import client_kwargs
from shared.topics import SLA_TRIGGERS
from tests.e2e.browser import chromium_page
from tests.e2e.demo import Traffic, restore_flag

pytestmark = pytest.mark.e2e

FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")
DEMO = os.environ.get("SAFEGUARD_DEMO_URL", "http://127.0.0.1:8100")
COLOURS = {
    "blue": f"http://127.0.0.1:{os.environ.get('DEMO_BLUE_PORT', '8101')}",
    "green": f"http://127.0.0.1:{os.environ.get('DEMO_GREEN_PORT', '8102')}",
}
SERVICE = os.environ.get("DEMO_SERVICE", "demo")  # what the demo publishes as `service` (DemoSettings.service)
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
# The stack's own topics: the processor runs without a prefix (.stack/env); tests' prefixes are per test.
TRIGGERS_TOPIC = os.environ.get("SAFEGUARD_STACK_TOPIC_PREFIX", "") + SLA_TRIGGERS
ROOT = Path(__file__).resolve().parents[2]
FLAG = "gamification"
LEADERBOARD = "/api/gamification/leaderboard?user=e2e-runbook"
ARTEFACTS = Path(os.environ.get("E2E_ARTEFACTS", ROOT / ".stack" / "artefacts"))


def admin_token() -> str:
    token = os.environ.get("SAFEGUARD_ADMIN_TOKEN") or ""
    path = ROOT / ".stack" / "admin-token"
    if not token and path.exists():
        token = path.read_text().strip()
    if not token:
        pytest.fail("no admin token: set SAFEGUARD_ADMIN_TOKEN or run `make up` (writes .stack/admin-token)")
    return token


@pytest.fixture(scope="module")
def stack() -> None:
    """The front door, the demo and Kafka must answer: a missing piece fails, never skips."""
    for url in (f"{FRONT}/api/flags/{FLAG}", f"{DEMO}/healthz", *(f"{u}/healthz" for u in COLOURS.values())):
        try:
            httpx.get(url, timeout=3).raise_for_status()
        except httpx.HTTPError as exc:
            pytest.fail(f"{url} does not answer ({exc!r}); run `make up`")


# ------------------------------------------------------------------ sla.triggers, from "now" on


@dataclass
class TriggerWatch:
    """Every trigger event of `service` published after the watch started, with its arrival time."""

    service: str
    consumer: AIOKafkaConsumer
    seen: list[tuple[float, Event]] = field(default_factory=list)

    async def poll(self, seconds: float) -> None:
        batches = await self.consumer.getmany(timeout_ms=int(max(seconds, 0.01) * 1000))
        now = time.monotonic()
        for records in batches.values():
            for r in records:
                event = decode(TRIGGERS_TOPIC, r.value)
                if getattr(event, "service", None) == self.service:
                    self.seen.append((now, event))

    def of(self, trigger: str, kind: type[Event] | None = None) -> list[Event]:
        return [e for _, e in self.seen
                if getattr(e, "trigger", None) == trigger and (kind is None or isinstance(e, kind))]

    def arrived(self, event: Event) -> float:
        return next(t for t, e in self.seen if e is event)

    async def until(self, pred: Callable[[], bool], timeout: float, *, while_waiting: Callable[[], Any] | None = None,
                    what: str = "") -> float:
        """Poll until `pred()`; returns the seconds waited; fails with what was seen on timeout."""
        start = time.monotonic()
        while not pred():
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                seen = [(type(e).__name__, getattr(e, "trigger", ""), getattr(e, "episode_id", ""))
                        for _, e in self.seen]
                raise AssertionError(f"{what or 'condition'} not met within {timeout}s; {self.service} triggers seen: {seen}")
            if while_waiting is not None:
                await while_waiting()
            await self.poll(min(left, 0.2))
        return time.monotonic() - start


async def _partitions(topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(**client_kwargs(BOOTSTRAP), request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), 10)
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [] if described["error_code"] else [p["partition"] for p in described["partitions"]]


@asynccontextmanager
async def watch_triggers(service: str = SERVICE) -> AsyncIterator[TriggerWatch]:
    """A group-less consumer on every partition of sla.triggers, positioned at the end *before* the action."""
    consumer = AIOKafkaConsumer(**client_kwargs(BOOTSTRAP), enable_auto_commit=False, group_id=None)
    try:
        await asyncio.wait_for(consumer.start(), 10)
    except Exception as exc:  # noqa: BLE001
        await consumer.stop()
        pytest.fail(f"Kafka at {BOOTSTRAP} does not answer ({exc!r}); run `make up`")
    try:
        partitions = await _partitions(TRIGGERS_TOPIC)
        assert partitions, f"{TRIGGERS_TOPIC} has no partitions: is the stack's topic set created?"
        tps = [TopicPartition(TRIGGERS_TOPIC, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, not lazily after the action
            await consumer.position(tp)
        yield TriggerWatch(service, consumer)
    finally:
        await consumer.stop()


# ------------------------------------------------------------------ the demo and its faults


async def reset_faults(http: httpx.AsyncClient) -> None:
    for url in COLOURS.values():
        r = await http.delete(f"{url}/api/faults")
        assert r.status_code == 200, r.text


async def put_faults(http: httpx.AsyncClient, url: str, **faults: Any) -> dict[str, Any]:
    r = await _while_restarting(lambda: http.put(f"{url}/api/faults", json=faults))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _while_restarting(call: Any, timeout: float = 20.0) -> httpx.Response:
    """Retry a call while the instance is away: recovery may have told it to restart (RestartProcess)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            r: httpx.Response = await call()
            if r.status_code not in (502, 503) or time.monotonic() > deadline:
                return r
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def recovery_acted_on(http: httpx.AsyncClient, episode_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The recovery service's audit entry for this trigger episode (L1 of the escalation path)."""
    deadline = time.monotonic() + timeout
    while True:
        r = await http.get(f"{FRONT}/api/recovery/actions", params={"service": SERVICE, "limit": 200})
        assert r.status_code == 200, r.text
        found = [a for a in r.json() if a["episode_id"] == episode_id]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, f"recovery recorded no action for episode {episode_id}"
        await asyncio.sleep(0.2)


async def sla_trigger(http: httpx.AsyncClient, trigger: str) -> dict[str, Any]:
    r = await http.get(f"{FRONT}/api/sla/{SERVICE}")
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()["triggers"][trigger]
    return state


async def wait_trigger_ok(http: httpx.AsyncClient, trigger: str, traffic: Traffic | None, timeout: float) -> None:
    """A leftover episode (an aborted earlier run) must end before this test's episode can start."""
    deadline = time.monotonic() + timeout
    while (state := await sla_trigger(http, trigger))["active"]:
        assert time.monotonic() < deadline, f"{trigger} still active after {timeout}s of clean running: {state}"
        if traffic is not None:
            await traffic.tick()
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------ 1. the feature flag, live


async def test_gamification_on_by_api_then_off_by_the_runbook_curl(stack: None) -> None:
    token = admin_token()
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=5) as http:
        found = (await http.get(f"{FRONT}/api/flags/{FLAG}")).json()
        try:
            assert (await http.get(f"{DEMO}/")).status_code == 200
            if found["state"] == "ENABLED":  # start from off, so "on" below is this test's doing
                r = await http.post(f"{FRONT}/api/flags/{FLAG}/disable", headers=auth, json={"reason": "e2e"})
                assert r.status_code == 200, r.text
            await until_status(http, LEADERBOARD, 404, timeout=2.0)
            r = await http.post(f"{FRONT}/api/flags/{FLAG}/enable", headers=auth, json={"reason": "e2e runbook loop"})
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "ENABLED"
            t0 = time.monotonic()
            on_after = await until_status(http, LEADERBOARD, 200, timeout=2.0)
            body = (await http.get(f"{DEMO}{LEADERBOARD}")).json()
            assert body["leaders"], body

            # Runbook step 1, verbatim: no Content-Type, no token.
            t1 = time.monotonic()
            await runbook_step_1()
            off_after = await until_status(http, LEADERBOARD, 404, timeout=2.0)
            print(f"\ngamification: on seen {on_after:.2f}s after the enable call returned,"
                  f" off seen {off_after:.2f}s after the runbook curl returned ({t1 - t0:.2f}s on)")
            assert on_after < 1.5 and off_after < 1.5, (on_after, off_after)
        finally:
            await _restore_flag(http, found, auth)


async def until_status(http: httpx.AsyncClient, path: str, status: int, *, timeout: float, base: str = DEMO,
                       every_s: float = 0.05) -> float:
    """Seconds until the app at `base` (the demo's HAProxy front by default) answers `status` on `path`."""
    start = time.monotonic()
    last = None
    for _ in range(int(timeout / every_s) + 1):
        last = (await http.get(f"{base}{path}")).status_code
        if last == status:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            break
        await asyncio.sleep(every_s)
    raise AssertionError(f"{base}{path} answered {last}, not {status}, for {timeout}s")


async def runbook_step_1() -> None:
    """The runbook's Step 1, verbatim: curl with no Content-Type and no token."""
    out = await asyncio.to_thread(
        subprocess.run,
        ["curl", "-s", "-X", "POST", f"{FRONT}/api/system/status",
         "-d", '{"feature": "gamification", "enabled": false}'],
        capture_output=True, text=True, timeout=10, check=True)
    assert '"enabled":false' in out.stdout, out.stdout


async def _restore_flag(http: httpx.AsyncClient, found: dict[str, Any], auth: dict[str, str]) -> None:
    await restore_flag(http, FLAG, found, auth=auth, reason="e2e runbook loop: restore")


# ------------------------------------------------------------------ 2. error rate > 5 %


async def test_error_rate_fires_once_and_clears_once(stack: None) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        traffic = Traffic(http, path="/", rps=40, budget=4000)
        try:
            await reset_faults(http)
            await wait_trigger_ok(http, "error_rate_high", traffic, timeout=25)
            async with watch_triggers() as watch:
                for url in COLOURS.values():  # whichever colour HAProxy picks
                    await put_faults(http, url, error_rate=0.3)
                traffic.reset_counts()
                await watch.until(lambda: bool(watch.of("error_rate_high", TriggerFired)), 15,
                                  while_waiting=traffic.tick, what="TriggerFired error_rate_high")
                assert traffic.first_at is not None
                fired = watch.of("error_rate_high", TriggerFired)[0]
                assert isinstance(fired, TriggerFired)
                detect_s = watch.arrived(fired) - traffic.first_at
                bad = dict(traffic.statuses)
                assert bad.get(500, 0) > 0 and bad.get(200, 0) > 0, bad
                assert fired.value > fired.threshold == 0.05 and fired.samples >= 20, fired

                active = await sla_trigger(http, "error_rate_high")
                assert active["active"] is True and active["episode_id"] == fired.episode_id, active
                action = await recovery_acted_on(http, fired.episode_id)  # the runbook: disable new features
                assert action["action"] == "disable_new_features", action
                await while_ticking(traffic, status_page_during_the_fault(http, fired))

                await reset_faults(http)
                traffic.reset_counts()
                clear_s = await watch.until(
                    lambda: bool(watch.of("error_rate_high", TriggerCleared)), 25,
                    while_waiting=traffic.tick, what="TriggerCleared error_rate_high")
                assert set(traffic.statuses) == {200}, traffic.statuses
                # a little more clean traffic: nothing else may be published for this episode
                end = time.monotonic() + 1.5
                while time.monotonic() < end:
                    await traffic.tick()
                    await watch.poll(0.1)
            fired_all = watch.of("error_rate_high", TriggerFired)
            cleared_all = watch.of("error_rate_high", TriggerCleared)
            assert len(fired_all) == 1 and len(cleared_all) == 1, watch.seen
            cleared = cleared_all[0]
            assert isinstance(cleared, TriggerCleared)
            assert cleared.episode_id == fired.episode_id and cleared.value <= cleared.threshold
            state = await sla_trigger(http, "error_rate_high")
            assert state["active"] is False, state
            failed, seen = await report_impact(http, fired.episode_id)
            assert 0 < failed < seen, (failed, seen)  # the post-incident report's impact, from the SLA series
            print(f"\nerror_rate_high: fired {detect_s:.2f}s after the first bad request "
                  f"({bad}, value {fired.value:.3f}); cleared {clear_s:.2f}s after the fault was removed; "
                  f"{traffic.sent} requests")
        finally:
            await reset_faults(http)


async def while_ticking(traffic: Traffic, work: Awaitable[None]) -> None:
    """Run `work` while the traffic keeps its pace (a pause would be made up in one burst: the demo's rate
    limit answers 429 to that)."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await traffic.tick()
        await asyncio.wait({task}, timeout=0.05)
    await task


async def incident_of(http: httpx.AsyncClient, episode_id: str) -> dict[str, Any] | None:
    """The open incident on /status.json that holds `episode_id`: its own, or the demo incident it joined
    (a rollback or a `latency_high` incident of the same service; services/notifier/grouping.py)."""
    own = incident_id_for(SERVICE, episode_id)
    for inc in (await http.get(f"{FRONT}/status.json")).json()["open"]:
        if inc["incident_id"] == own:
            return dict(inc)
        if inc["service"] == SERVICE:
            full = (await http.get(f"{FRONT}/api/incidents/{inc['incident_id']}",
                                   headers={"Authorization": f"Bearer {admin_token()}"})).json()
            if any(f"(episode {episode_id})" in e["text"] for e in full.get("timeline", [])):
                return dict(inc)
    return None


async def status_page_during_the_fault(http: httpx.AsyncClient, fired: TriggerFired) -> None:
    """The communication plan while the fault is on (issue 15): the status page, in Chromium, shows the demo
    as not operational, with the incident that holds the episode titled in words ("demo: error rate 31.2 %
    > 5 %", or the demo incident the episode joined)."""
    deadline = time.monotonic() + 45
    while (inc := await incident_of(http, fired.episode_id)) is None:
        if time.monotonic() > deadline:
            seen = (await http.get(f"{FRONT}/status.json")).json()["open"]
            raise AssertionError(f"no open incident holds episode {fired.episode_id} on /status.json within 45 s; "
                                 f"open: {[(i['incident_id'], i['service'], i['title']) for i in seen]}")
        await asyncio.sleep(0.3)
    async with chromium_page() as page:
        await page.goto(f"{FRONT}/status")
        state = (await page.locator(f"#component-{SERVICE} .state").inner_text()).strip()
        body = await page.inner_text("body")
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTEFACTS / "status-page-fault.png"))
    assert state != "Operational", state
    assert inc["title"] in body, (inc["title"], body[:2000])
    # the episode in words: the incident's title, or its timeline entry in the incident it joined
    assert f"{SERVICE}: error rate " in body and " % > 5 %" in body, body[:2000]


async def report_impact(http: httpx.AsyncClient, episode_id: str, timeout: float = 20.0) -> tuple[int, int]:
    """Requests failed / seen from the post-incident report of the incident that holds the episode, once it
    resolved (the notifier asks the SLA service's minute series when it resolves)."""
    deadline, auth = time.monotonic() + timeout, {"Authorization": f"Bearer {admin_token()}"}
    while True:
        incidents = (await http.get(f"{FRONT}/api/incidents", params={"limit": 20, "days": 1}, headers=auth)).json()
        inc = next((i for i in incidents if i["service"] == SERVICE and (
            i["episode_id"] == episode_id or any(f"(episode {episode_id})" in e["text"] for e in i["timeline"]))), None)
        if inc is not None and inc["status"] == "resolved":
            report = (await http.get(f"{FRONT}/api/incidents/{inc['incident_id']}/report", headers=auth)).text
            found = re.search(r"Requests failed: ([\d,]+) of ([\d,]+)", report)
            assert found is not None, report
            return int(found.group(1).replace(",", "")), int(found.group(2).replace(",", ""))
        assert time.monotonic() < deadline, f"the incident of {episode_id} not resolved: {inc}"
        await asyncio.sleep(0.3)


# ------------------------------------------------------------------ 3 + 4. database lost, memory > 90 %
# Both come from ProcessStatsReported (every 5 s per instance) and clear only after a hold of
# several reports, so the two episodes run side by side (on the two colours) to keep the file
# within its time budget: each has its own watch and its own assertions.


async def test_db_connection_lost_and_memory_high_fire_and_clear(stack: None) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        try:
            await reset_faults(http)
            active = (await http.get(f"{DEMO}/")).json()["color"]  # the colour HAProxy sends us to
            other = next(c for c in COLOURS if c != active)
            async with asyncio.TaskGroup() as tg:
                db = tg.create_task(_db_connection_lost_episode(http, DEMO, active))
                mem = tg.create_task(_memory_high_episode(http, COLOURS[other], other))
            print(f"\n{db.result()}\n{mem.result()}")
        finally:
            await reset_faults(http)


async def assert_one_episode(http: httpx.AsyncClient, watch: Any, trigger: str, fired: TriggerFired) -> None:
    """Exactly one fired and one cleared for this trigger, of the same episode, and the SLA API agrees."""
    assert len(watch.of(trigger, TriggerFired)) == 1, watch.seen
    cleared = watch.of(trigger, TriggerCleared)
    assert len(cleared) == 1 and isinstance(cleared[0], TriggerCleared), watch.seen
    assert cleared[0].episode_id == fired.episode_id
    assert not (await sla_trigger(http, trigger))["active"]


async def _db_connection_lost_episode(http: httpx.AsyncClient, url: str, colour: str) -> str:
    """drop_db on the active colour (through :8100) -> fired; pool restored -> cleared."""
    await wait_trigger_ok(http, "db_connection_lost", None, timeout=15)
    async with watch_triggers() as watch:
        faults = await put_faults(http, url, drop_db=True)
        assert faults["db_dropped"] is True and faults["db_connected"] is False, faults
        # checked before recovery can react: its RestartConnectionPool may reopen the pool any moment now
        items = await http.get(f"{url}/api/items")
        assert items.status_code == 503, items.text  # the app says so, it does not hang
        detect_s = await watch.until(lambda: bool(watch.of("db_connection_lost", TriggerFired)), 12,
                                     what="TriggerFired db_connection_lost")
        fired = watch.of("db_connection_lost", TriggerFired)[0]
        assert isinstance(fired, TriggerFired)
        assert fired.instance == f"{SERVICE}-{colour}", fired
        state = await sla_trigger(http, "db_connection_lost")
        assert state["active"] is True and state["episode_id"] == fired.episode_id, state

        action = await recovery_acted_on(http, fired.episode_id)
        assert action["action"] == "restart_connection_pool", action
        # reopen the pool ourselves too (recovery's RestartConnectionPool may be under way or in cooldown)
        faults = await put_faults(http, url, drop_db=False)
        assert faults["db_connected"] is True, faults
        assert (await http.get(f"{url}/api/items")).status_code == 200
        clear_s = await watch.until(lambda: bool(watch.of("db_connection_lost", TriggerCleared)), 20,
                                    what="TriggerCleared db_connection_lost")
        await watch.poll(0.5)
    await assert_one_episode(http, watch, "db_connection_lost", fired)
    return (f"db_connection_lost ({fired.instance}): fired {detect_s:.2f}s after drop_db, "
            f"cleared {clear_s:.2f}s after the pool was restored")


async def _memory_high_episode(http: httpx.AsyncClient, url: str, colour: str) -> str:
    """480 MB of ballast on ~80 MB of RSS (> 90 % of DEMO_MEMORY_LIMIT_MB=512) -> fired; freed -> cleared."""
    await wait_trigger_ok(http, "memory_high", None, timeout=20)
    async with watch_triggers() as watch:
        t0 = time.monotonic()
        faults = await put_faults(http, url, grow_memory_mb=480)
        grow_s = time.monotonic() - t0
        assert faults["memory_mb"] >= 480, faults
        detect_s = await watch.until(lambda: bool(watch.of("memory_high", TriggerFired)), 15,
                                     what="TriggerFired memory_high")
        fired = watch.of("memory_high", TriggerFired)[0]
        assert isinstance(fired, TriggerFired)
        assert fired.instance == f"{SERVICE}-{colour}" and fired.value > 90, fired
        state = await sla_trigger(http, "memory_high")
        assert state["active"] is True and state["episode_id"] == fired.episode_id, state

        action = await recovery_acted_on(http, fired.episode_id)
        assert action["action"] == "restart_process" and action["instance"] == fired.instance, action
        # free the ballast (recovery's RestartProcess may already have restarted the process, or be in cooldown)
        r = await _while_restarting(lambda: http.delete(f"{url}/api/faults"))
        assert r.status_code == 200 and r.json()["memory_mb"] == 0, r.text
        clear_s = await watch.until(lambda: bool(watch.of("memory_high", TriggerCleared)), 25,
                                    what="TriggerCleared memory_high")
        await watch.poll(0.5)
    await assert_one_episode(http, watch, "memory_high", fired)
    return (f"memory_high ({fired.instance}, {fired.value:.0f} %): fired {detect_s:.2f}s after the growth "
            f"(the grow call took {grow_s:.2f}s), cleared {clear_s:.2f}s after the ballast was freed")
