"""The notifier watches the health service (the watcher's watcher): 60 s of failed reads open one `unresponsive`
incident for `health` that pages level 2; a read that succeeds resolves it; a restart of the notifier neither
opens a second one nor leaves the first open."""

from __future__ import annotations

from datetime import timedelta

from services.notifier.health_watch import HealthWatch
from services.notifier.status_sources import Snapshot
from shared.events import IncidentEscalated, IncidentOpened, IncidentResolved
from tests.unit.notifier.conftest import Env

DOWN = Snapshot(errors=("health service: ReadTimeout ",))
UP = Snapshot(system={"status": "pass"})


def watch(env: Env) -> HealthWatch:
    return HealthWatch(env.svc, after_s=60, clock=env.svc.now)


async def rounds(env: Env, w: HealthWatch, snap: Snapshot, n: int) -> None:
    for _ in range(n):
        await w.observe(snap)
        env.clock.advance(10)


async def test_sixty_seconds_of_failed_reads_page_once_and_a_read_resolves(env: Env) -> None:
    w = watch(env)
    await rounds(env, w, UP, 2)
    await rounds(env, w, DOWN, 6)  # 0 .. 50 s
    assert env.pub.of_type(IncidentOpened) == [], "under 60 s: nothing yet"
    await rounds(env, w, Snapshot(errors=("sla service: ConnectError ",)), 1)
    assert env.pub.of_type(IncidentOpened) == [], "another source failing is not the health service"
    await rounds(env, w, DOWN, 8)
    [opened] = env.pub.of_type(IncidentOpened)
    assert opened.service == "health" and opened.trigger == "unresponsive"
    [escalated] = env.pub.of_type(IncidentEscalated)
    assert escalated.level == 2
    inc = await env.svc.get(opened.incident_id)
    assert inc.timeline[0].actor == "notifier" and "read by the notifier: health service: ReadTimeout" in \
        inc.timeline[0].text
    assert any(c == "oncall_page" for c, _, _ in env.sender.sent)
    await rounds(env, w, UP, 1)
    [resolved] = env.pub.of_type(IncidentResolved)
    assert resolved.incident_id == opened.incident_id and resolved.by == "notifier"


async def test_a_restarted_notifier_finds_the_open_incident(env: Env) -> None:
    first = watch(env)
    await rounds(env, first, DOWN, 8)
    assert len(env.pub.of_type(IncidentOpened)) == 1
    second = watch(env)  # a new process: no memory of the first
    await rounds(env, second, DOWN, 8)
    assert len(env.pub.of_type(IncidentOpened)) == 1, "still the one incident"
    env.clock.advance(timedelta(minutes=1).total_seconds())
    await rounds(env, second, UP, 1)
    assert len(env.pub.of_type(IncidentResolved)) == 1
