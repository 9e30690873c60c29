from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from services.recovery.app import create_app
from services.recovery.repository import MemoryAuditStore
from services.recovery.settings import RecoverySettings
from shared.auth import AuthSettings
from shared.events import RestartProcess
from shared.testing import InMemoryPublisher
from tests.unit.recovery.test_service import CONFIG, FakeFlags, fired

TOKEN = "t0ken-for-tests"


def _app(pub: InMemoryPublisher, audit: MemoryAuditStore):
    settings = RecoverySettings(policy_file=CONFIG, auth=AuthSettings(admin_token=SecretStr(TOKEN), env="test"))
    return create_app(settings, publisher=pub, audit=audit, flags=FakeFlags(), consume=False)


async def test_run_needs_the_admin_token_and_is_audited() -> None:
    pub, audit = InMemoryPublisher(), MemoryAuditStore()
    app = _app(pub, audit)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
            await app.state.recovery.recover_from_trigger(fired("memory_high", instance="demo-blue"))
            r = await c.post("/api/recovery/run", json={"service": "demo"})
            assert r.status_code == 401
            r = await c.post("/api/recovery/run", json={"service": "demo", "action": "reboot"},
                             headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 422
            r = await c.post("/api/recovery/run", json={"service": "demo"},
                             headers={"Authorization": f"Bearer {TOKEN}", "X-Safeguard-Actor": "ops"})
            assert r.status_code == 200
            [rec] = r.json()
            assert rec["actor"] == "admin:ops" and rec["action"] == "restart_process" and rec["attempt"] == 2
            assert [c.instance for c in pub.of_type(RestartProcess)] == ["demo-blue", "demo-blue"]
            actions = (await c.get("/api/recovery/actions")).json()
            assert sorted(a["actor"] for a in actions) == ["admin:ops", "recovery"]
            policy = (await c.get("/api/recovery/policy")).json()
            assert policy["policy"]["verify_window"] == 300 and policy["active"][0]["trigger"] == "memory_high"
            assert (await c.get("/healthz")).status_code == 200


def test_bad_policy_stops_the_app(tmp_path: Path) -> None:
    import pytest

    from services.recovery.policy import PolicyError

    bad = tmp_path / "p.yaml"
    bad.write_text("cooldown: forever")
    with pytest.raises(PolicyError, match="cooldown"):
        create_app(RecoverySettings(policy_file=bad))


async def test_run_while_kafka_refuses_is_503_and_records_nothing() -> None:
    from aiokafka.errors import KafkaConnectionError

    pub, audit = InMemoryPublisher(), MemoryAuditStore()
    app = _app(pub, audit)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
            pub.fail_with = KafkaConnectionError("broker down")
            r = await c.post("/api/recovery/run", json={"service": "demo", "action": "restart_process"},
                             headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 503 and "nothing recorded" in r.json()["detail"] and r.headers["retry-after"]
            assert audit.records == {}
