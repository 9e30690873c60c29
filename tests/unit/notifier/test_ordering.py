"""Finding 5 (and 12) of issue 10: the notifier remembers an incident only once it is written.

A failed write leaves nothing behind, so the consumer's retry opens (or resolves) fully; a failed
publish or webhook is sent again later; the state lives in the store, so a second service object
on the same store (a restart, another instance after a rebalance) carries on without acting twice."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from services.notifier.repository import MemoryIncidentStore
from services.notifier.service import NotifierService, incident_id_for
from shared.events import IncidentEscalated, IncidentOpened, IncidentResolved, NotificationDelivered
from tests.unit.notifier.conftest import Env
from tests.unit.notifier.test_service import cleared, fired

READS = {"get", "open_incidents", "recent", "report", "deliveries"}


class PostgresDown(ConnectionError):
    """What the store raises while the database is unreachable."""


class FlakyStore(MemoryIncidentStore):
    """Every write raises while `down` (reads still answer: the database went away in between)."""

    down = False

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or name in READS or not callable(attr) or not object.__getattribute__(self, "down"):
            return attr

        async def refuse(*args: object, **kwargs: object) -> None:
            raise PostgresDown(f"{name}: connection refused")
        return refuse


@pytest.fixture
def flaky(env: Env) -> Env:
    store = FlakyStore()
    env.svc.store = env.store = store
    return env


def twin(env: Env) -> NotifierService:
    """Another instance (or the restarted process) on the same store."""
    return NotifierService(policy=env.svc.policy, publisher=env.pub, store=env.store, sender=env.sender,
                           now=env.svc.now)


async def flush(env: Env) -> None:
    dispatch = getattr(env.svc, "dispatch", None)
    assert dispatch is not None, "no relay: nothing sends what a failure left behind"
    await dispatch()


async def test_a_failed_save_leaves_nothing_and_the_retry_opens_fully(flaky: Env) -> None:
    env = flaky
    env.store.down = True
    with pytest.raises(PostgresDown):
        await env.svc.open_incident(fired())
    env.store.down = False
    inc = await env.svc.open_incident(fired())  # the consumer's retry
    assert inc is not None and (await env.store.get(inc.incident_id)) is not None
    assert len(env.pub.of_type(IncidentOpened)) == 1
    assert sorted(c for c, _, _ in env.sender.sent) == ["stakeholder", "status_page", "user"]
    env.clock.advance(300)
    assert [i.level for i in await env.svc.escalate_overdue()] == [2]  # the timer is armed


async def test_a_failed_resolve_is_resolved_by_the_retry(flaky: Env) -> None:
    env = flaky
    inc = await env.svc.open_incident(fired())
    env.store.down = True
    with pytest.raises(PostgresDown):
        await env.svc.resolve_on_clear(cleared())
    env.store.down = False
    assert await env.svc.resolve_on_clear(cleared()) is not None
    assert len(env.pub.of_type(IncidentResolved)) == 1
    assert (await env.store.get(inc.incident_id)).status == "resolved"
    assert await env.store.report(inc.incident_id) is not None


async def test_a_failed_publish_is_sent_later_and_once(env: Env) -> None:
    env.pub.fail_with = ConnectionError("broker down")
    with contextlib.suppress(ConnectionError):
        await env.svc.open_incident(fired())
    env.pub.fail_with = None
    with contextlib.suppress(ConnectionError):
        await env.svc.open_incident(fired())  # a retry, if the handler raised
    env.clock.advance(60)
    await flush(env)
    assert len(env.pub.of_type(IncidentOpened)) == 1
    assert sorted(c for c, _, _ in env.sender.sent) == ["stakeholder", "status_page", "user"]


async def test_a_failed_webhook_is_redelivered_later(env: Env) -> None:
    env.sender.fail_channels = {"stakeholder"}
    await env.svc.open_incident(fired())
    assert "stakeholder" not in {c for c, _, _ in env.sender.sent}
    env.sender.fail_channels = set()
    env.clock.advance(3600)
    await flush(env)
    assert [c for c, _, _ in env.sender.sent].count("stakeholder") == 1
    [d] = [d for d in await env.store.deliveries(incident_id_for("demo", "ep1")) if d.channel == "stakeholder"]
    assert d.ok and d.attempts == 2
    assert {e.channel for e in env.pub.of_type(NotificationDelivered)} >= {"stakeholder"}
    await flush(env)
    assert [c for c, _, _ in env.sender.sent].count("stakeholder") == 1


async def test_another_instance_resolves_what_this_one_opened(env: Env) -> None:
    other = twin(env)  # started before the incident, like an instance that takes the partition over
    await env.svc.open_incident(fired())
    assert await other.resolve_on_clear(cleared()) is not None
    assert len(env.pub.of_type(IncidentResolved)) == 1


async def test_a_restart_keeps_the_escalation_deadline(env: Env) -> None:
    await env.svc.open_incident(fired())
    env.clock.advance(200)
    restarted = twin(env)
    await restarted.restore()
    env.clock.advance(100)
    assert [i.level for i in await restarted.escalate_overdue()] == [2]  # 300 s after opening, not after the restart


async def test_two_instances_escalate_once(env: Env) -> None:
    await env.svc.open_incident(fired())
    other = twin(env)
    await other.restore()
    env.clock.advance(300)
    escalated = await env.svc.escalate_overdue() + await other.escalate_overdue()
    assert [i.level for i in escalated] == [2] and len(env.pub.of_type(IncidentEscalated)) == 1
