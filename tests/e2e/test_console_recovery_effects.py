"""The console's Recovery page shows a verified effect and a feature recovery keeps off (issue 14), in a real
browser (Debian's Chromium through Playwright). Everything is private to the test, over real HTTP, on the real
Postgres / Redis / Kafka: a flags service (own schema and prefixes), a recovery API (own schema) and a console.
The shared stack's flags are never killed.

Recovery kills the new features for an error-rate trigger, sees them serve off through OFREP (the verified
effect, kept in its audit log), and the trigger clears: the feature stays off, marked on the Recovery page,
the flags list and the flag's page, until a person turns it on. Screenshot: docs/console-recovery-effects.png."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from services.flags.app import create_app as flags_app
from services.recovery.app import create_app as recovery_app
from services.recovery.flags_client import HttpFlagsClient
from services.recovery.operator import Operator
from services.recovery.policy import load_policy
from services.recovery.repository import PgAuditStore, open_pool
from services.recovery.service import RecoveryService
from services.recovery.settings import RecoverySettings
from services.recovery.verify import EffectChecks, OfrepProbe
from shared.auth import AuthSettings
from shared.events import TriggerCleared, TriggerFired
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing import InMemoryPublisher
from tests.e2e.browser import chromium_page
from tests.e2e.test_console_incidents import _shot
from tests.integration.flags.conftest import ThreadServer, drop, flags_settings
from tests.unit.recovery.test_service import CONFIG

pytestmark = pytest.mark.e2e

TOKEN = "test-admin-token"  # the private flags service's (flags_settings)
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _serve(app: object) -> ThreadServer:
    """The app under uvicorn on a free loopback port, once its /healthz answers (recovery has no /readyz)."""
    server = ThreadServer(app)  # type: ignore[arg-type]
    server.thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.thread.is_alive():
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{server.url} did not start")


async def _act(*, flags_url: str, postgres_dsn: str, schema: str, episode: str) -> None:
    """An instance of recovery acting on an error-rate trigger, then seeing it clear (shares the API's schema)."""
    token = SecretStr(TOKEN)
    async with httpx.AsyncClient(timeout=5) as http, open_pool(PostgresSettings(dsn=SecretStr(postgres_dsn)),
                                                               schema=schema) as pool:
        operator = Operator(verifier=EffectChecks(
            watch=None, flags=OfrepProbe(http, flags_url=flags_url, token=token), timeout_s=20, poll_s=0.05))
        svc = RecoveryService(policy=load_policy(CONFIG), publisher=InMemoryPublisher(), audit=PgAuditStore(pool),
                              operator=operator, flags=HttpFlagsClient(http, flags_url=flags_url, token=token))
        await svc.recover_from_trigger(TriggerFired(
            service="demo", trigger="error_rate_high", episode_id=episode, value=0.31, threshold=0.05,
            window_seconds=5, time=datetime.now(UTC)))
        await operator.settled()
        await svc.verify_cleared(TriggerCleared(service="demo", trigger="error_rate_high", episode_id=episode,
                                                value=0.0, threshold=0.05))


async def test_recovery_page_shows_a_verified_effect_and_a_kept_off_feature(
        unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str, schema: str) -> None:
    from playwright.async_api import expect

    key, episode, auth = f"kept-{unique}", f"ep-{unique}", AuthSettings(env="test", admin_token=SecretStr(TOKEN))
    fsettings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url)
    servers = [await asyncio.to_thread(ThreadServer(flags_app(fsettings)).start)]
    try:
        flags_url = servers[0].url
        rsettings = RecoverySettings(postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)), db_schema=schema,
                                     redis=RedisSettings(url=SecretStr(redis_url)), kafka=kafka_settings, auth=auth,
                                     flags_url=flags_url, executor="sdk", targets={})
        servers.append(await asyncio.to_thread(_serve, recovery_app(rsettings, publisher=InMemoryPublisher(),
                                                                    consume=False)))
        servers.append(await asyncio.to_thread(_serve, console_app(
            ConsoleSettings(flags_url=flags_url, recovery_url=servers[1].url), auth=auth)))
        console = servers[2].url
        async with httpx.AsyncClient(base_url=flags_url, timeout=5) as http:
            r = await http.post("/api/flags", json={"key": key, "state": "ENABLED", "new": True,
                                                    "description": "e2e: killed by recovery"}, headers=ADMIN)
            assert r.status_code == 201, r.text
            await _act(flags_url=flags_url, postgres_dsn=postgres_dsn, schema=schema, episode=episode)

            async with chromium_page(height=1100) as page:
                await page.goto(f"{console}/console/login?next=/console/recovery")
                await page.fill("input[name=name]", "e2e-dana")
                await page.fill("input[name=token]", TOKEN)
                await page.click("button[type=submit]")
                await expect(page.locator("header .session")).to_contain_text("e2e-dana")
                kept = page.locator(f"#kept-off p.kept-off:has(a[href='/console/flags/{key}'])")
                await expect(kept).to_contain_text("turned off by recovery at ")
                await expect(kept).to_contain_text(f"for episode {episode}")
                await expect(kept).to_contain_text("stays off until a person turns it on")
                row = page.locator("table.recovery tr", has_text="disable new features").first
                await expect(row.locator("td.effect.ok")).to_contain_text("OFREP serves")
                await expect(row.locator("td.effect.ok")).to_contain_text(key)
                await expect(row.locator("td.effect.ok")).to_contain_text("off (reason DISABLED)")
                await _shot(page, "recovery-effects")

                await page.goto(f"{console}/console/flags?q={key}")
                await expect(page.locator(f"#flag-row-{key} .kept-off")).to_contain_text("kept off by recovery")
                await page.goto(f"{console}/console/flags/{key}")
                await expect(page.locator("#kept-off")).to_contain_text("Kept off by recovery")

                # a person turns it on: no longer marked anywhere
                r = await http.post(f"/api/flags/{key}/enable", json={"reason": "fixed"},
                                    headers=ADMIN | {"X-Safeguard-Actor": "e2e-dana"})
                assert r.status_code == 200, r.text
                await page.goto(f"{console}/console/recovery")
                await expect(page.locator("#kept-off")).not_to_contain_text(key)
                await page.goto(f"{console}/console/flags/{key}")
                await expect(page.locator("#kept-off")).to_have_count(0)
    finally:
        for server in reversed(servers):
            await asyncio.to_thread(server.stop)
        await drop(fsettings, redis_url)
