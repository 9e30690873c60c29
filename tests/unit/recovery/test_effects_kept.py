"""Recovery keeps what it saw after acting (issue 14): the verified effect (or that none was seen) is written
to its audit log once, before RecoveryActionVerified is published, and published again by the tick when
Kafka refused it. Features it turned off stay off: nothing automatic turns them back on, and
`GET /api/recovery/kept-off` lists each one until a person changes it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from services.recovery.app import create_app
from services.recovery.flags_client import Change
from services.recovery.operator import Operator
from services.recovery.policy import load_policy
from services.recovery.repository import MemoryAuditStore
from services.recovery.service import RecoveryService
from services.recovery.settings import RecoverySettings
from shared.auth import AuthSettings
from shared.events import RecoveryActionVerified
from shared.testing import InMemoryPublisher
from tests.unit.recovery.test_operator import SeenEffect
from tests.unit.recovery.test_service import CONFIG, cleared, fired


class AuditedFlags:
    """The flags service as recovery sees it: a kill switch and each flag's newest change."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.newest: dict[str, Change] = {}

    async def kill_new(self, *, reason: str) -> list[str]:
        self.calls.append(f"kill_new: {reason}")
        for key in ("gamification", "new-search"):
            self.newest[key] = Change(actor="admin:recovery", action="killed", at=datetime.now(UTC))
        return ["gamification", "new-search"]

    async def newest_change(self, key: str) -> Change | None:
        self.calls.append(f"read {key}")
        return self.newest.get(key)


class RefusingOnce(InMemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.refuse: type | None = None

    async def publish(self, event, **kw):  # type: ignore[no-untyped-def, override]
        if self.refuse is not None and isinstance(event, self.refuse):
            self.refuse = None
            raise OSError("Kafka refused")
        return await super().publish(event, **kw)


def _svc(effect: str | None, pub: InMemoryPublisher, flags: AuditedFlags) -> tuple[RecoveryService, Operator]:
    operator = Operator(verifier=SeenEffect(effect))
    return RecoveryService(policy=load_policy(CONFIG), publisher=pub, flags=flags, audit=MemoryAuditStore(),
                           operator=operator), operator


async def test_a_verified_effect_is_kept_with_the_action_and_published() -> None:
    pub, flags = InMemoryPublisher(), AuditedFlags()
    svc, operator = _svc("OFREP serves gamification, new-search off (reason DISABLED)", pub, flags)
    rec = await svc.recover_from_trigger(fired())
    await operator.settled()
    [view] = await svc.audit.recent(limit=5, service=None)
    assert rec is not None and view.action_id == rec.action_id
    assert view.verify_outcome == "verified" and view.effect is not None and "serves gamification" in view.effect
    assert view.verified_at is not None and view.verify_seconds is not None and view.verify_seconds >= 0
    assert view.killed_flags == ["gamification", "new-search"]
    [event] = pub.of_type(RecoveryActionVerified)
    assert event.effect == view.effect and "killed flags: gamification, new-search" in event.detail
    assert await svc.audit.unreported_effects() == []


async def test_no_effect_seen_is_kept_too_and_publishes_nothing() -> None:
    pub, flags = InMemoryPublisher(), AuditedFlags()
    svc, operator = _svc(None, pub, flags)
    await svc.recover_from_trigger(fired())
    await operator.settled()
    [view] = await svc.audit.recent(limit=5, service=None)
    assert view.verify_outcome == "not_seen" and view.effect is not None
    assert view.effect.startswith("no effect seen (looked for ")
    assert pub.of_type(RecoveryActionVerified) == []


async def test_an_effect_kafka_refused_is_published_by_the_tick_and_kept_once() -> None:
    pub, flags = RefusingOnce(), AuditedFlags()
    pub.refuse = RecoveryActionVerified
    svc, operator = _svc("breaker postgres open on demo-blue", pub, flags)
    rec = await svc.recover_from_trigger(fired())
    await operator.settled()
    assert pub.of_type(RecoveryActionVerified) == [] and len(await svc.audit.unreported_effects()) == 1
    await svc.check_timeouts()
    [event] = pub.of_type(RecoveryActionVerified)
    assert rec is not None and event.action_id == rec.action_id and await svc.audit.unreported_effects() == []
    assert not await svc.audit.record_effect(rec.action_id, outcome="not_seen", effect="late", seconds=1.0,
                                             at=datetime.now(UTC))  # one outcome per action


async def test_killed_features_stay_off_after_the_clear_until_a_person_turns_them_on() -> None:
    pub, flags = InMemoryPublisher(), AuditedFlags()
    settings = RecoverySettings(policy_file=CONFIG, auth=AuthSettings(admin_token=SecretStr("t"), env="test"))
    svc, operator = _svc("OFREP serves gamification, new-search off (reason DISABLED)", pub, flags)
    app = create_app(settings, publisher=pub, audit=svc.audit, flags=flags, consume=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t") as c:
        svc = app.state.recovery
        await svc.recover_from_trigger(fired(episode="ep-kill"))
        await svc.verify_cleared(cleared(episode="ep-kill"))
        await svc.check_timeouts()
        # the clear, the tick and the end of the episode turn nothing back on
        assert [c for c in flags.calls if not c.startswith("read")] == [flags.calls[0]]
        assert flags.calls[0].startswith("kill_new")
        kept = (await c.get("/api/recovery/kept-off")).json()
        assert {k["flag"]: k["kept_off"] for k in kept} == {"gamification": True, "new-search": True}
        assert all("stays off until a person turns it on" in k["text"] and k["episode_id"] == "ep-kill"
                   for k in kept)
        [action] = (await c.get("/api/recovery/actions")).json()
        assert action["killed_flags"] == ["gamification", "new-search"] and action["status"] == "succeeded"

        flags.newest["gamification"] = Change(actor="admin:bob", action="enable", at=datetime.now(UTC))
        kept = (await c.get("/api/recovery/kept-off")).json()
        assert [k["flag"] for k in kept] == ["new-search"]
        every = {k["flag"]: k for k in (await c.get("/api/recovery/kept-off?all=true")).json()}
        assert every["gamification"]["kept_off"] is False and every["gamification"]["changed_by"] == "admin:bob"
        assert (await c.get("/api/recovery/kept-off?limit=0")).status_code == 422


async def test_nothing_turned_off_keeps_no_outcome() -> None:
    class NoneOn(AuditedFlags):
        async def kill_new(self, *, reason: str) -> list[str]:
            return []

    pub = InMemoryPublisher()
    svc, operator = _svc("never asked", pub, NoneOn())
    await svc.recover_from_trigger(fired())
    await operator.settled()
    [view] = await svc.audit.recent(limit=5, service=None)
    assert view.verify_outcome is None and view.killed_flags == [] and pub.of_type(RecoveryActionVerified) == []
