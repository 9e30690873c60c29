"""Unacknowledged pages repeat like PagerDuty's re-notification (issue 14): with the shipped policy (and the
built-in defaults), a page at L2 to whoever is on call goes again every 5 minutes until it is acknowledged or
escalated; nothing repeats at L1 (nobody is paged there). Fake clock: no sleeping."""

from __future__ import annotations

from datetime import timedelta

from services.notifier.ack import AckLinks
from services.notifier.policy import NotifierPolicy, load_policy
from services.notifier.repository import MemoryIncidentStore
from services.notifier.service import NotifierService
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender
from tests.unit.notifier.test_oncall import SCHEDULE, Clock, fired, pages, utc


def _svc(clock: Clock, sender: FakeSender, policy: NotifierPolicy) -> NotifierService:
    links = AckLinks(key=b"k" * 32, base_url="http://status.test", valid_for=timedelta(hours=1))
    return NotifierService(policy=policy, publisher=InMemoryPublisher(), store=MemoryIncidentStore(), sender=sender,
                           now=clock, oncall=SCHEDULE, ack=links)


async def _tick(svc: NotifierService, clock: Clock, *, minutes: int) -> None:
    for _ in range(minutes * 2):  # every 30 s, as the notifier's own tick would see it
        clock.advance(30)
        await svc.escalate_overdue()


def test_the_shipped_policy_and_the_defaults_repeat_l2_pages_every_five_minutes() -> None:
    for policy in (load_policy(CONFIG), NotifierPolicy()):
        assert policy.level(1).repeat_every is None and policy.level(2).repeat_every == 300
        assert policy.level(3).repeat_every == 600


async def test_an_unacknowledged_l2_page_repeats_every_five_minutes_until_escalated() -> None:
    clock, sender = Clock(utc("2026-11-10T03:00")), FakeSender()  # a Tuesday: bob's week
    svc = _svc(clock, sender, load_policy(CONFIG))
    await svc.open_incident(fired(clock))
    await _tick(svc, clock, minutes=5)  # L1 (auto-recovery) for 5 min: nobody paged
    assert [p for p, _ in pages(sender)] == ["bob"]
    await _tick(svc, clock, minutes=4)
    assert len(pages(sender)) == 1  # nothing in between
    await _tick(svc, clock, minutes=1)
    assert [p for p, _ in pages(sender)] == ["bob", "bob"] and "still not acknowledged after 5m" in pages(sender)[1][1]
    await _tick(svc, clock, minutes=5)
    assert [p for p, _ in pages(sender)] == ["bob"] * 3
    await _tick(svc, clock, minutes=5)  # 15 min at L2: escalated to L3, whose page repeats every 10 min
    [inc] = await svc.store.open_incidents()
    sysadmin = SCHEDULE.who("sysadmin", at=clock())
    assert inc.level == 3 and [p for p, _ in pages(sender)] == ["bob"] * 3 + [sysadmin]
    await _tick(svc, clock, minutes=10)
    assert [p for p, _ in pages(sender)][4:] == [SCHEDULE.who("sysadmin", at=clock())]


async def test_an_acknowledged_page_stops_repeating() -> None:
    clock, sender = Clock(utc("2026-11-10T03:00")), FakeSender()
    svc = _svc(clock, sender, load_policy(CONFIG))
    inc = await svc.open_incident(fired(clock))
    assert inc is not None
    await _tick(svc, clock, minutes=6)
    assert len(pages(sender)) == 1
    await svc.acknowledge(inc.incident_id, actor="bob")
    await _tick(svc, clock, minutes=60)
    [after] = await svc.store.open_incidents()
    assert len(pages(sender)) == 1 and after.level == 2 and after.acknowledged_by == "bob"
