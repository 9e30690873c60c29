"""The recovery loop through real Kafka, Postgres and Redis; the flags API is a tiny local HTTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from services.recovery.app import create_app
from services.recovery.settings import RecoverySettings
from shared.auth import AuthSettings
from shared.events import DisableNewFeatures, RecoveryActionStarted, RecoveryActionSucceeded, TriggerCleared, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing.kafka import expect_events
from shared.topics import RECOVERY_ACTIONS, RECOVERY_COMMANDS

TOKEN = "integration-token"


@pytest.fixture
async def flags_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """Answers `POST /api/flags/_kill-new` like the flags service; records method, path and headers."""
    calls: list[dict[str, str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        line, *fields = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields if f)}
        await reader.readexactly(int(headers.get("content-length", "0")))
        calls.append({"line": line, **headers})
        body = json.dumps({"killed": ["gamification"]}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                     + f"content-length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", calls


async def test_fired_then_cleared_through_kafka_and_postgres(
    kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str, unique: str,
    flags_server: tuple[str, list[dict[str, str]]],
) -> None:
    flags_url, calls = flags_server
    schema = f"recovery_t{unique}"
    settings = RecoverySettings(kafka=kafka_settings, postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)),
                                redis=RedisSettings(url=SecretStr(redis_url)), db_schema=schema, flags_url=flags_url,
                                auth=AuthSettings(admin_token=SecretStr(TOKEN), env="test"), tick_interval_s=0.2)
    app = create_app(settings)
    boot = kafka_settings.bootstrap_servers
    prefix = kafka_settings.topic_prefix
    try:
        async with app.router.lifespan_context(app), \
                KafkaPublisher.start(kafka_settings, source="/tests/sla") as sla:
            fired = TriggerFired(service="demo", trigger="error_rate_high", episode_id=f"ep-{unique}", value=0.08,
                                 threshold=0.05, window_seconds=5, detail="7 of 87 requests")
            await sla.publish(fired)
            [cmd] = await expect_events(boot, prefix + RECOVERY_COMMANDS, count=1, timeout=30)
            assert isinstance(cmd, DisableNewFeatures) and cmd.episode_id == f"ep-{unique}"
            [started] = await expect_events(boot, prefix + RECOVERY_ACTIONS, count=1, timeout=10)
            assert isinstance(started, RecoveryActionStarted) and started.action == "disable_new_features"
            kills = [c for c in calls if not c["line"].startswith("POST /ofrep/")]  # OFREP: the effect verified
            assert len(kills) == 1 and kills[0]["line"].startswith("POST /api/flags/_kill-new")
            assert kills[0]["authorization"] == f"Bearer {TOKEN}" and kills[0]["x-safeguard-actor"] == "recovery"

            await sla.publish(TriggerCleared(service="demo", trigger="error_rate_high", episode_id=f"ep-{unique}",
                                             value=0.01, threshold=0.05))
            events = await expect_events(boot, prefix + RECOVERY_ACTIONS, count=1, timeout=30,
                                         where=lambda e: isinstance(e, RecoveryActionSucceeded))
            assert events[0].action_id == started.action_id

            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
                [rec] = (await c.get("/api/recovery/actions")).json()
            assert rec["status"] == "succeeded" and rec["actor"] == "recovery" and rec["trigger"] == "error_rate_high"
            assert "gamification" in rec["detail"] and rec["finished_at"] is not None
        conn = await asyncpg.connect(postgres_dsn)
        try:
            row = await conn.fetchrow(f'SELECT status, reason FROM "{schema}".actions')
            assert row["status"] == "succeeded" and "error_rate_high" in row["reason"]
        finally:
            await conn.close()
    finally:
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
