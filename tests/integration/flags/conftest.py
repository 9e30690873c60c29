"""A flags app per test on the real Postgres (own schema), Redis (own key prefix) and Kafka (own topic prefix)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.flags.app import create_app
from services.flags.service import FlagService
from services.flags.settings import FlagsSettings
from shared.auth import AuthSettings
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings

ADMIN = {"Authorization": "Bearer test-admin-token"}


@dataclass
class Flags:
    app: FastAPI
    client: httpx.AsyncClient
    settings: FlagsSettings

    @property
    def service(self) -> FlagService:
        svc: FlagService = self.app.state.flags
        return svc


def flags_settings(unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str,
                   **over: object) -> FlagsSettings:
    return FlagsSettings(
        db_schema=f"flags_t{unique}", cache_prefix=f"t{unique}:flags:", kafka=kafka_settings,
        postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)), redis=RedisSettings(url=SecretStr(redis_url)),
        auth=AuthSettings(env="local", admin_token=SecretStr("test-admin-token")),
        rate_limit="10000/second", write_limit="10000/second",
        refresh_interval_s=0.2, scheduler_interval_s=0.2, relay_interval_s=0.5, seed=True,
        **{"journal_path": f"{tempfile.gettempdir()}/safeguard-test-{unique}/pending-off.jsonl", "sync_port": 0,
           **over})


async def drop(settings: FlagsSettings, redis_url: str) -> None:
    conn = await asyncpg.connect(settings.postgres.dsn.get_secret_value())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
    finally:
        await conn.close()
    import redis.asyncio as aioredis
    r = aioredis.from_url(redis_url)
    await r.delete(settings.cache_prefix + "defs", settings.cache_prefix + "revision")
    await r.aclose()


@pytest.fixture
async def flags(unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str
                ) -> AsyncIterator[Flags]:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
            async with httpx.AsyncClient(transport=transport, base_url="http://flags") as client:
                yield Flags(app, client, settings)
    finally:
        await drop(settings, redis_url)


class ThreadServer:
    """Our app under uvicorn on a free loopback port, in a thread (for clients that need real HTTP)."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        import socket
        import threading

        import uvicorn

        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # SSE streams never end by themselves: give them 1 s before the server cancels them
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                                    access_log=False, lifespan="on", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ThreadServer:
        import time
        self.thread.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not self.thread.is_alive():
                pytest.fail("the flags service did not start (Postgres/Redis up? `make up`)")
            time.sleep(0.1)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
