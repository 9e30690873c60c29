"""Pause and resume automatic recovery from the console, against an in-process recovery app on real Postgres
(its own schema; the shared stack's recovery is never paused): the page shows who paused it, a trigger
while paused is listed as "skipped: paused", and resume brings the page back to "Running"."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from services.console.app import create_app as console_app
from services.console.backends import Backends
from services.console.settings import ConsoleSettings
from services.recovery.app import create_app as recovery_app
from services.recovery.settings import RecoverySettings
from shared.auth import AuthSettings
from shared.events import TriggerFired
from shared.settings import PostgresSettings
from shared.testing import InMemoryPublisher

TOKEN = "t0ken-for-console-pause-tests"


class NoFlags:
    async def kill_new(self, *, reason: str) -> list[str]:
        raise AssertionError("nothing is killed while recovery is paused")



async def test_pause_and_resume_from_the_console(postgres_dsn: str, schema: str, unique: str) -> None:
    auth = AuthSettings(env="test", admin_token=SecretStr(TOKEN))
    recovery = recovery_app(RecoverySettings(postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)), db_schema=schema,
                                             auth=auth), publisher=InMemoryPublisher(), flags=NoFlags(), consume=False)
    async with recovery.router.lifespan_context(recovery), AsyncExitClients(recovery) as clients:
        console = console_app(ConsoleSettings(), auth=auth, backends=clients)
        async with console.router.lifespan_context(console), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=console), base_url="http://127.0.0.1") as c:
            await c.post("/console/login", data={"token": TOKEN, "name": "dana"})
            page = (await c.get("/console/recovery")).text
            assert "Running: triggers are acted on" in page
            csrf = page.split('"X-CSRF-Token": "')[1].split('"')[0]

            r = await c.post("/console/recovery/pause", data={"csrf": csrf, "reason": "hands on"})
            assert r.status_code == 303
            await recovery.state.recovery.recover_from_trigger(TriggerFired(
                service="demo", trigger="error_rate_high", episode_id=f"ep-{unique}", value=0.2, threshold=0.05,
                window_seconds=5, time=datetime.now(UTC)))
            page = (await c.get(r.headers["location"])).text
            assert "Automatic recovery paused." in page and "Paused for every service" in page
            assert "paused by <b>admin:dana</b>" in page and "(hands on)" in page
            assert "skipped: paused" in page

            r = await c.post("/console/recovery/resume", data={"csrf": csrf})
            page = (await c.get(r.headers["location"])).text
            assert "Running: triggers are acted on" in page and "resumed" in page
            pool = recovery.state.recovery.pauses.pool
            rows = await pool.fetch("SELECT paused, actor FROM pauses ORDER BY id")
            assert [(x["paused"], x["actor"]) for x in rows] == [(True, "admin:dana"), (False, "admin:dana")]


class AsyncExitClients:
    """Backends whose recovery client talks to the in-process app; the others point nowhere (unused here)."""

    def __init__(self, recovery: object) -> None:
        self.recovery = httpx.AsyncClient(transport=httpx.ASGITransport(app=recovery), base_url="http://recovery")  # type: ignore[arg-type]
        self.idle = httpx.AsyncClient(base_url="http://127.0.0.1:9")

    async def __aenter__(self) -> Backends:
        return Backends(flags=self.idle, health=self.idle, sla=self.idle, recovery=self.recovery, notifier=self.idle)

    async def __aexit__(self, *exc: object) -> None:
        await self.recovery.aclose()
        await self.idle.aclose()
