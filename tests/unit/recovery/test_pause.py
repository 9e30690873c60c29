"""Pause / resume of automatic recovery: admin-only, audited with who, and while paused a fired trigger
is recorded as skipped ("paused: ...") with nothing sent; operator runs still act."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from services.recovery.app import create_app
from services.recovery.repository import MemoryAuditStore
from services.recovery.settings import RecoverySettings
from shared.auth import AuthSettings
from shared.events import DisableNewFeatures, RestartProcess
from shared.testing import InMemoryPublisher
from tests.unit.recovery.test_service import CONFIG, FakeFlags, cleared, fired

TOKEN = "t0ken-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "X-Safeguard-Actor": "alice"}


def _app(pub: InMemoryPublisher, audit: MemoryAuditStore, flags: FakeFlags):
    settings = RecoverySettings(policy_file=CONFIG, auth=AuthSettings(admin_token=SecretStr(TOKEN), env="test"))
    return create_app(settings, publisher=pub, audit=audit, flags=flags, consume=False)


async def test_paused_recovery_records_the_trigger_as_skipped_and_acts_on_nothing() -> None:
    pub, audit, flags = InMemoryPublisher(), MemoryAuditStore(), FakeFlags()
    app = _app(pub, audit, flags)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t") as c:
        assert (await c.post("/api/recovery/pause")).status_code == 401
        assert (await c.post("/api/recovery/pause", json={"service": ""}, headers=ADMIN)).status_code == 422
        r = await c.post("/api/recovery/pause", json={"reason": "deploy in progress"}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["paused"] is True
        assert r.json()["scopes"][0] | {"at": None} == {"scope": "*", "paused": True, "actor": "admin:alice",
                                                       "reason": "deploy in progress", "at": None}

        rec = await app.state.recovery.recover_from_trigger(fired("error_rate_high", "ep-paused"))
        assert rec is not None and rec.status == "skipped"
        assert rec.detail.startswith("paused: auto-recovery paused for every service by admin:alice")
        assert flags.calls == [] and pub.of_type(DisableNewFeatures) == []

        # people still act while it is paused
        r = await c.post("/api/recovery/run", json={"service": "demo", "action": "restart_process"}, headers=ADMIN)
        assert r.status_code == 200 and len(pub.of_type(RestartProcess)) == 1

        r = await c.post("/api/recovery/resume", headers=ADMIN)
        assert r.json()["paused"] is False and r.json()["scopes"] == []
        assert [(h["paused"], h["actor"]) for h in r.json()["history"]] == [(False, "admin:alice"),
                                                                            (True, "admin:alice")]
        # the trigger skipped while paused still fires: the resume acts on it, once
        [acted] = r.json()["acted"]
        assert (acted["episode_id"], acted["actor"], acted["status"]) == ("ep-paused", "recovery:resumed", "started")
        assert "acted on after resume by admin:alice" in acted["reason"] and len(flags.calls) == 1
        assert len(pub.of_type(DisableNewFeatures)) == 1
        r = await c.post("/api/recovery/resume", headers=ADMIN)
        assert r.json()["acted"] == [] and len(flags.calls) == 1


async def test_a_resume_leaves_cleared_and_still_paused_episodes_alone() -> None:
    pub, audit, flags = InMemoryPublisher(), MemoryAuditStore(), FakeFlags()
    app = _app(pub, audit, flags)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t") as c:
        svc = app.state.recovery
        await c.post("/api/recovery/pause", headers=ADMIN)
        await c.post("/api/recovery/pause", json={"service": "other"}, headers=ADMIN)
        await svc.recover_from_trigger(fired("error_rate_high", "ep-cleared"))
        await svc.verify_cleared(cleared("error_rate_high", "ep-cleared"))
        await svc.recover_from_trigger(fired("error_rate_high", "ep-other", service="other"))
        r = await c.post("/api/recovery/resume", headers=ADMIN)  # every service, but "other" is paused alone
        assert r.status_code == 200 and r.json()["acted"] == [] and flags.calls == []
        r = await c.post("/api/recovery/resume", json={"service": "other"}, headers=ADMIN)
        assert [a["episode_id"] for a in r.json()["acted"]] == ["ep-other"] and len(flags.calls) == 1


async def test_a_service_paused_alone_leaves_the_others_acting() -> None:
    pub, audit, flags = InMemoryPublisher(), MemoryAuditStore(), FakeFlags()
    app = _app(pub, audit, flags)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t") as c:
        r = await c.post("/api/recovery/pause", json={"service": "demo"}, headers=ADMIN)
        assert r.json()["paused"] is False and [s["scope"] for s in r.json()["scopes"]] == ["demo"]
        svc = app.state.recovery
        skipped = await svc.recover_from_trigger(fired("memory_high", "ep-demo", instance="demo-blue"))
        acted = await svc.recover_from_trigger(fired("memory_high", "ep-shop", service="shop", instance="shop-1"))
        assert skipped is not None and skipped.status == "skipped" and "for demo" in skipped.detail
        assert acted is not None and acted.status == "started"
        assert [cmd.service for cmd in pub.of_type(RestartProcess)] == ["shop"]
        assert (await c.get("/api/recovery/pause")).json()["scopes"][0]["scope"] == "demo"
