"""Verified effects and kept-off features in recovery's Postgres audit log, against a real flags app (own
schema, Redis and Kafka prefixes): the effect is kept with the action, a half-written outcome is refused by
the table itself, and a flag recovery killed stays off after the trigger clears until a person turns it on."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from services.recovery.flags_client import HttpFlagsClient
from services.recovery.kept_off import kept_off
from services.recovery.operator import Operator
from services.recovery.policy import load_policy
from services.recovery.repository import PgAuditStore, migrate, open_pool
from services.recovery.service import RecoveryService
from services.recovery.verify import EffectChecks, OfrepProbe
from shared.events import TriggerCleared, TriggerFired
from shared.settings import PostgresSettings
from shared.testing import InMemoryPublisher
from tests.integration.flags.conftest import ADMIN, Flags, flags  # noqa: F401 - the fixture

CONFIG = Path(__file__).resolve().parents[3] / "config" / "recovery.yaml"
TOKEN = SecretStr(ADMIN["Authorization"].removeprefix("Bearer "))


async def test_effect_and_kept_off_flag_survive_the_clear_in_postgres(
        flags: Flags, postgres_dsn: str, schema: str, unique: str) -> None:  # noqa: F811
    key = f"kept-{unique}"
    r = await flags.client.post("/api/flags", json={"key": key, "state": "ENABLED", "new": True}, headers=ADMIN)
    assert r.status_code == 201, r.text
    probe = OfrepProbe(flags.client, flags_url="http://flags", token=TOKEN)
    client = HttpFlagsClient(flags.client, flags_url="http://flags", token=TOKEN)
    async with open_pool(PostgresSettings(dsn=SecretStr(postgres_dsn)), schema=schema) as pool:
        await migrate(pool, schema=schema)
        audit = PgAuditStore(pool)
        operator = Operator(verifier=EffectChecks(watch=None, flags=probe, timeout_s=20, poll_s=0.05))
        svc = RecoveryService(policy=load_policy(CONFIG), publisher=InMemoryPublisher(), audit=audit,
                              operator=operator, flags=client)
        rec = await svc.recover_from_trigger(TriggerFired(service="demo", trigger="error_rate_high",
                                                          episode_id=f"ep-{unique}", value=0.3, threshold=0.05,
                                                          window_seconds=5))
        await operator.settled()
        assert rec is not None
        [view] = await audit.recent(limit=1, service="demo")
        assert view.verify_outcome == "verified" and view.effect is not None and key in view.effect
        assert key in view.killed_flags and view.verified_at is not None

        await svc.verify_cleared(TriggerCleared(service="demo", trigger="error_rate_high", episode_id=f"ep-{unique}",
                                                value=0.0, threshold=0.05))
        assert await probe.serves_off(key)  # the clear turned nothing back on
        [mine] = [k for k in await kept_off(await audit.kills(), audit=client) if k.flag == key]
        assert mine.kept_off is True and mine.episode_id == f"ep-{unique}"

        r = await flags.client.post(f"/api/flags/{key}/enable", json={"reason": "fixed"},
                                    headers=ADMIN | {"X-Safeguard-Actor": "bob"})
        assert r.status_code == 200, r.text
        [mine] = [k for k in await kept_off(await audit.kills(), audit=client) if k.flag == key]
        assert mine.kept_off is False and mine.changed_by == "admin:bob"

        with pytest.raises(asyncpg.CheckViolationError):  # no outcome without what was seen and when
            await pool.execute("UPDATE actions SET verify_outcome = 'verified', effect = NULL WHERE action_id = $1",
                               rec.action_id)
