"""Postgres down: evaluation answers from the Redis copy / memory (no 5xx), turning a flag on is a clear
503, turning it off still works (see test_fail_safe.py).
Redis down: everything works from Postgres. Both show in /healthz (200, status warn) and /readyz."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from services.flags.app import create_app
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from tests.integration.flags.conftest import ADMIN, drop, flags_settings

DEAD_PG = "postgresql://safeguard:safeguard@127.0.0.1:1/safeguard"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 1)), base_url="http://f")


async def test_postgres_down_serves_from_redis_and_redis_down_serves_from_postgres(
        unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str) -> None:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url)
    try:
        app = create_app(settings)
        async with app.router.lifespan_context(app), _client(app) as c:
            await c.post("/api/flags", json={"key": "checkout", "state": "ENABLED"}, headers=ADMIN)

        no_pg = settings.model_copy(update={"postgres": PostgresSettings(dsn=SecretStr(DEAD_PG))})
        app = create_app(no_pg)
        async with app.router.lifespan_context(app), _client(app) as c:
            health = (await c.get("/healthz")).json()
            assert health["status"] == "warn" and health["checks"]["postgres"] == "down"
            assert health["checks"]["redis"] == "up" and health["loaded_from"] == "redis"
            assert (await c.get("/readyz")).status_code == 200
            r = await c.post("/ofrep/v1/evaluate/flags/checkout", json={"context": {}})
            assert r.status_code == 200 and r.json()["value"] is True
            assert (await c.get("/api/flags/gamification")).json()["state"] == "DISABLED"
            # turning ON needs the store: a clear 503; turning OFF never does (journaled, reconciled later)
            r = await c.post("/api/flags/gamification/enable", headers=ADMIN)
            assert r.status_code == 503 and r.headers["retry-after"] and r.json()["errorCode"] == "UNAVAILABLE"
            r = await c.post("/api/flags/checkout/kill", headers=ADMIN)
            assert r.status_code == 200, r.text
            assert (await c.post("/ofrep/v1/evaluate/flags", json={"context": {}})).status_code == 200

        no_redis = settings.model_copy(update={"redis": RedisSettings(url=SecretStr(DEAD_REDIS))})
        app = create_app(no_redis)
        async with app.router.lifespan_context(app), _client(app) as c:
            health = (await c.get("/healthz")).json()
            assert health["checks"]["redis"] == "down" and health["checks"]["postgres"] == "up"
            assert health["loaded_from"] == "postgres"
            r = await c.post("/api/flags/checkout/kill", headers=ADMIN)  # rate limiter falls back to memory too
            assert r.status_code == 200, r.text
            r = await c.post("/ofrep/v1/evaluate/flags/checkout", json={"context": {}})
            assert r.json()["value"] is False
    finally:
        await drop(settings, redis_url)
