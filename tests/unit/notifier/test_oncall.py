"""On call: rotation hand-offs (time zones, DST, overrides), L2 pages whoever is on call, repeated pages until
acknowledged, escalation timing, and the signed acknowledge link (confirm page, once, expiring). Fake clock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.notifier.ack import AckError, AckLinks
from services.notifier.app import create_app
from services.notifier.oncall import OnCallSchedule, load_oncall
from services.notifier.policy import NotifierPolicy, PolicyError, load_policy
from services.notifier.repository import MemoryIncidentStore
from services.notifier.service import NotifierService
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.events import IncidentAcknowledged, TriggerFired
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender

ONCALL = Path(__file__).resolve().parents[3] / "config" / "oncall.yaml"
SCHEDULE = OnCallSchedule.model_validate({
    "people": {"alice": {"email": "alice@example.com"}, "bob": {}, "carol": {}, "dave": {}},
    "rotations": [
        {"name": "oncall-developer", "timezone": "Asia/Bangkok", "start": "2026-11-02T09:00", "shift": "7d",
         "members": ["alice", "bob", "carol"]},
        {"name": "sysadmin", "timezone": "Europe/Berlin", "start": "2026-10-20T08:00", "shift": "1d",
         "members": ["dave", "carol"]}],
    "overrides": [{"rotation": "oncall-developer", "person": "dave", "start": "2026-12-24T09:00",
                   "end": "2026-12-26T09:00"}]})


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_weekly_rotation_hands_off_at_nine_bangkok_time() -> None:
    assert SCHEDULE.who("oncall-developer", at=utc("2026-11-02T01:59:59")) == "carol"  # 08:59 in Bangkok (UTC+7)
    assert SCHEDULE.who("oncall-developer", at=utc("2026-11-02T02:00")) == "alice"
    assert SCHEDULE.who("oncall-developer", at=utc("2026-11-09T01:59")) == "alice"
    assert SCHEDULE.who("oncall-developer", at=utc("2026-11-09T02:00")) == "bob"
    assert SCHEDULE.who("oncall-developer", at=utc("2026-11-23T02:00")) == "alice"  # round again


def test_hand_off_stays_at_local_time_across_the_dst_change() -> None:
    # Berlin leaves summer time on 2026-10-25: 08:00 local is 06:00 UTC before, 07:00 UTC after
    assert SCHEDULE.who("sysadmin", at=utc("2026-10-24T05:59")) != SCHEDULE.who("sysadmin", at=utc("2026-10-24T06:00"))
    before, after = SCHEDULE.who("sysadmin", at=utc("2026-10-26T06:59")), SCHEDULE.who("sysadmin", at=utc("2026-10-26T07:00"))
    assert before != after and SCHEDULE.who("sysadmin", at=utc("2026-10-26T06:00")) == before


def test_an_override_wins_for_its_period_only() -> None:
    assert SCHEDULE.who("oncall-developer", at=utc("2026-12-24T01:59")) == "bob"
    assert SCHEDULE.who("oncall-developer", at=utc("2026-12-24T02:00")) == "dave"
    assert SCHEDULE.who("oncall-developer", at=utc("2026-12-26T02:00")) == "bob"
    [dev, _] = SCHEDULE.now(at=utc("2026-12-25T00:00"))
    assert dev["person"] == "dave" and dev["until"] == utc("2026-12-26T02:00")


@pytest.mark.parametrize(("change", "message"), [
    ({"rotations": [{"name": "r", "start": "2026-11-02T09:00", "members": ["zed"]}]}, "zed not in people"),
    ({"rotations": [{"name": "r", "start": "2026-11-02T09:00+07:00", "members": ["alice"]}]}, "without an offset"),
    ({"rotations": [{"name": "r", "timezone": "Mars/Base", "start": "2026-11-02T09:00", "members": ["alice"]}]},
     "unknown time zone"),
    ({"overrides": [{"rotation": "nope", "person": "alice", "start": "2026-01-01T00:00", "end": "2026-01-02T00:00"}]},
     "no rotation 'nope'"),
], ids=["member", "offset", "zone", "override"])
def test_a_bad_schedule_is_refused_naming_the_problem(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    import yaml
    path = tmp_path / "oncall.yaml"
    path.write_text(yaml.safe_dump({"people": {"alice": {}}, **change}))
    with pytest.raises(PolicyError, match=message):
        load_oncall(path)


def test_the_shipped_schedule_is_valid_and_names_the_policy_contacts() -> None:
    schedule, policy = load_oncall(ONCALL), load_policy(CONFIG)
    assert schedule.has("oncall-developer") and schedule.has("sysadmin")
    assert policy.level(2).contacts == ["oncall-developer"] and policy.level(3).repeat_every is not None


def _policy(**l2: Any) -> NotifierPolicy:
    raw = load_policy(CONFIG).model_dump()
    raw["levels"][1] |= {"escalate_after": 900, "repeat_every": 300} | l2
    return NotifierPolicy.model_validate(raw)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def fired(clock: Clock, episode: str = "ep1") -> TriggerFired:
    return TriggerFired(service="demo", trigger="error_rate_high", episode_id=episode, value=0.2, threshold=0.05,
                        window_seconds=30, time=clock())


def _svc(clock: Clock, sender: FakeSender, **l2: Any) -> NotifierService:
    links = AckLinks(key=b"k" * 32, base_url="http://status.test", valid_for=timedelta(hours=1))
    return NotifierService(policy=_policy(**l2), publisher=InMemoryPublisher(), store=MemoryIncidentStore(),
                           sender=sender, now=clock, oncall=SCHEDULE, ack=links)


def pages(sender: FakeSender) -> list[tuple[str, str]]:
    return [(r, m) for c, r, m in sender.sent if c == "oncall_page"]


async def test_l2_pages_whoever_is_on_call_repeats_then_escalates_on_time() -> None:
    # L2 is reached at 08:50 Bangkok on a hand-off Monday: alice is paged, and again at 08:55; at 09:00 bob
    clock, sender = Clock(utc("2026-11-09T01:45")), FakeSender()
    svc = _svc(clock, sender)
    await svc.open_incident(fired(clock))
    clock.advance(299)
    assert await svc.escalate_overdue() == [] and pages(sender) == []
    clock.advance(1)
    await svc.escalate_overdue()
    assert [p for p, _ in pages(sender)] == ["alice"]
    assert "(on call: oncall-developer)" in pages(sender)[0][1] and "/ack?token=" in pages(sender)[0][1]
    for _ in range(2):  # repeats at +5 min and +10 min, none in between
        clock.advance(299)
        await svc.escalate_overdue()
        clock.advance(1)
        await svc.escalate_overdue()
    assert [p for p, _ in pages(sender)] == ["alice", "alice", "bob"]
    assert all("still not acknowledged" in m for _, m in pages(sender)[1:])
    clock.advance(299)
    await svc.escalate_overdue()
    [inc] = await svc.store.open_incidents()
    assert inc.level == 2
    clock.advance(1)  # 15 min at L2: L3, the sysadmin on call in Berlin
    await svc.escalate_overdue()
    [inc] = await svc.store.open_incidents()
    assert inc.level == 3 and pages(sender)[-1][0] == SCHEDULE.who("sysadmin", at=clock())


async def test_without_repeat_every_a_level_pages_once() -> None:
    clock, sender = Clock(utc("2026-11-10T03:00")), FakeSender()
    svc = _svc(clock, sender, repeat_every=None)
    await svc.open_incident(fired(clock))
    for _ in range(20):
        clock.advance(60)
        await svc.escalate_overdue()
    assert [p for p, _ in pages(sender)] == ["bob", SCHEDULE.who("sysadmin", at=clock())]


def test_an_ack_token_is_bound_to_its_incident_and_expires() -> None:
    links, now = AckLinks(key=b"k" * 32, base_url="http://x", valid_for=timedelta(minutes=30)), utc("2026-11-10T03:00")
    token = links.token(incident_id="inc-a", person="bob", now=now)
    assert links.read(token, incident_id="inc-a", now=now + timedelta(minutes=29)).person == "bob"
    with pytest.raises(AckError, match="expired"):
        links.read(token, incident_id="inc-a", now=now + timedelta(minutes=30))
    with pytest.raises(AckError, match="another incident"):
        links.read(token, incident_id="inc-b", now=now)
    with pytest.raises(AckError, match="not valid"):
        links.read(token[:-2] + "xx", incident_id="inc-a", now=now)
    other = AckLinks(key=b"q" * 32, base_url="http://x", valid_for=timedelta(minutes=30))
    with pytest.raises(AckError, match="not valid"):
        other.read(token, incident_id="inc-a", now=now)


@pytest.fixture
async def app_env() -> AsyncIterator[tuple[httpx.AsyncClient, NotifierService, Clock, FakeSender, InMemoryPublisher]]:
    settings = NotifierSettings(policy_file=CONFIG, auth=AuthSettings(admin_token=SecretStr("t"), env="test"),
                                ack_secret=SecretStr("ack-key-for-tests"), ack_valid_s=1800)
    sender, pub, clock = FakeSender(), InMemoryPublisher(), Clock(utc("2026-11-10T03:00"))
    app = create_app(settings, policy=_policy(), publisher=pub, store=MemoryIncidentStore(), sender=sender,
                     consume=False, oncall=SCHEDULE)
    async with app.router.lifespan_context(app):
        svc: NotifierService = app.state.notifier
        svc.now = clock
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
            yield c, svc, clock, sender, pub


def _link(message: str) -> str:
    found = re.search(r"Acknowledge: http://localhost:3000(/api/incidents/\S+)$", message)
    assert found, message
    return found.group(1)


async def _paged(svc: NotifierService, clock: Clock, sender: FakeSender) -> str:
    await svc.open_incident(fired(clock))
    clock.advance(300)
    await svc.escalate_overdue()
    return _link(pages(sender)[-1][1])


async def test_the_ack_link_confirms_first_then_works_once(app_env: Any) -> None:
    c, svc, clock, sender, pub = app_env
    link = await _paged(svc, clock, sender)
    page = await c.get(link)  # what a link scanner does: nothing changes
    assert page.status_code == 200 and "Acknowledge as bob" in page.text and 'method="post"' in page.text
    [inc] = await svc.store.open_incidents()
    assert inc.acknowledged_by is None
    path, _, token = link.partition("?token=")
    from urllib.parse import unquote
    done = await c.post(path, data={"token": unquote(token)})
    assert done.status_code == 200 and "escalation stopped at level 2" in done.text
    [ack] = pub.of_type(IncidentAcknowledged)
    assert ack.by == "bob (page link)"
    again = await c.post(path, data={"token": unquote(token)})
    assert again.status_code == 409 and "already acknowledged by bob (page link)" in again.text
    assert (await c.get(link)).status_code == 409
    count = len(pages(sender))
    clock.advance(3600)
    assert await svc.escalate_overdue() == [] and len(pages(sender)) == count  # no more repeats


async def test_an_expired_or_altered_ack_link_does_nothing(app_env: Any) -> None:
    c, svc, clock, sender, _ = app_env
    link = await _paged(svc, clock, sender)
    path, _, token = link.partition("?token=")
    assert (await c.get(path, params={"token": "x" + token})).status_code == 403
    clock.advance(1800)
    expired = await c.get(link)
    assert expired.status_code == 403 and "expired" in expired.text
    from urllib.parse import unquote
    assert (await c.post(path, data={"token": unquote(token)})).status_code == 403
    [inc] = await svc.store.open_incidents()
    assert inc.acknowledged_by is None
    assert (await c.post(path, data={})).status_code == 422


async def test_who_is_on_call_needs_a_reader(app_env: Any) -> None:
    c, *_ = app_env
    assert (await c.get("/api/oncall")).status_code == 401
    r = await c.get("/api/oncall", headers={"Authorization": "Bearer t"})
    assert r.status_code == 200 and [x["rotation"] for x in r.json()] == ["oncall-developer", "sysadmin"]
