"""Pause / resume of automatic recovery against real Postgres and Kafka, on an in-process recovery app with
its own schema and topic prefix (the shared stack's recovery is never paused): the pause survives a restart,
a trigger while paused is recorded as skipped and sends nothing, and the resume acts on it while it still fires."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from services.recovery.app import create_app
from services.recovery.settings import RecoverySettings
from shared.auth import AuthSettings
from shared.events import OpenCircuitBreaker, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing.kafka import expect_events, expect_records
from shared.topics import RECOVERY_COMMANDS

TOKEN = "t0ken-for-pause-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "X-Safeguard-Actor": "carol"}


class NoFlags:
    async def kill_new(self, *, reason: str) -> list[str]:
        raise AssertionError("latency_high does not call the flags API")



def _fired(episode: str) -> TriggerFired:
    return TriggerFired(service="demo", trigger="latency_high", episode_id=episode, value=6200, threshold=5000,
                        window_seconds=5, time=datetime.now(UTC))


async def _action_of(c: httpx.AsyncClient, episode: str, *, timeout: float = 30) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        found = [a for a in (await c.get("/api/recovery/actions")).json() if a["episode_id"] == episode]
        if found:
            return found[0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no action recorded for {episode}")


async def test_a_pause_is_kept_in_postgres_and_stops_automatic_actions_until_resumed(
    kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str, unique: str, schema: str,
) -> None:
    settings = RecoverySettings(kafka=kafka_settings, postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)),
                                redis=RedisSettings(url=SecretStr(redis_url)), db_schema=schema,
                                auth=AuthSettings(env="test", admin_token=SecretStr(TOKEN)), tick_interval_s=0.2)
    boot, commands = kafka_settings.bootstrap_servers, kafka_settings.topic_prefix + RECOVERY_COMMANDS
    first = create_app(settings, flags=NoFlags(), consume=False)
    async with first.router.lifespan_context(first), httpx.AsyncClient(
            transport=httpx.ASGITransport(first), base_url="http://t") as c:
        r = await c.post("/api/recovery/pause", json={"reason": "hands on"}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["paused"] is True

    # a restarted service (new process, same database) is still paused, and a trigger acts on nothing
    second = create_app(settings, flags=NoFlags())
    async with KafkaPublisher.start(kafka_settings, source="/tests/sla") as sla, \
            second.router.lifespan_context(second), httpx.AsyncClient(
                transport=httpx.ASGITransport(second), base_url="http://t") as c:
        state = (await c.get("/api/recovery/pause")).json()
        assert state["paused"] is True and state["scopes"][0]["actor"] == "admin:carol"
        await sla.publish(_fired(f"ep-paused-{unique}"))
        skipped = await _action_of(c, f"ep-paused-{unique}")
        assert skipped["status"] == "skipped" and str(skipped["detail"]).startswith(
            "paused: auto-recovery paused for every service by admin:carol")
        with pytest.raises(AssertionError):
            await expect_records(boot, commands, count=1, timeout=2)

        r = await c.post("/api/recovery/resume", headers=ADMIN)
        assert r.json()["paused"] is False
        assert [(h["paused"], h["actor"]) for h in r.json()["history"]] == [(False, "admin:carol"),
                                                                            (True, "admin:carol")]
        # the trigger skipped while paused still fires: the resume acts on it (like a silence ending)
        [acted] = r.json()["acted"]
        assert (acted["episode_id"], acted["actor"]) == (f"ep-paused-{unique}", "recovery:resumed")
        [cmd] = await expect_events(boot, commands, count=1, timeout=30)
        assert isinstance(cmd, OpenCircuitBreaker) and cmd.episode_id == f"ep-paused-{unique}"
        rows = [a for a in (await c.get("/api/recovery/actions")).json() if a["episode_id"] == f"ep-paused-{unique}"]
        assert sorted(a["status"] for a in rows) == ["skipped", "started"]  # the skip stays in the audit log
