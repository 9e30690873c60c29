"""The Incidents and Recovery pages against the REAL running notifier and recovery (the native stack): the
console app runs in-process with its real HTTP clients and the stack's admin token. An incident of the test's
own service (a rolled-back deploy on `deploy.events`: only the notifier acts on it) is acknowledged and then
resolved from the console; the notifier records `admin:<name>` for both and the page renders its report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from markupsafe import escape

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings
from shared.events import DeploymentRolledBack
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings


@pytest.fixture
async def console() -> AsyncIterator[httpx.AsyncClient]:
    auth = AuthSettings()
    assert auth.admin_token is not None, "SAFEGUARD_ADMIN_TOKEN is not set: load .stack/env"
    app = create_app(ConsoleSettings(), auth=auth)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        r = await c.post("/console/login", data={"token": auth.admin_token.get_secret_value(), "name": "it-console"})
        assert r.status_code == 303, r.text
        yield c


async def _csrf(c: httpx.AsyncClient, path: str) -> str:
    return (await c.get(path)).text.split('"X-CSRF-Token": "')[1].split('"')[0]


async def _incident_of(c: httpx.AsyncClient, service: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = (await c.get("/console/incidents")).text
        for chunk in page.split('href="/console/incidents/')[1:]:
            iid, rest = chunk.split('"', 1)
            if rest.startswith(f">{service}: "):
                return iid
        await asyncio.sleep(0.5)
    raise AssertionError(f"no incident of {service} on the console after {timeout:g} s")


async def test_acknowledge_and_resolve_from_the_console_reach_the_notifier(console: httpx.AsyncClient,
                                                                           unique: str) -> None:
    service = f"it-console-{unique}"
    async with KafkaPublisher.start(KafkaSettings(), source="/tests/console") as pub:
        await pub.publish(DeploymentRolledBack(service=service, deploy_id=f"d-{unique}", version="2.0.0",
                                               colour="blue", reason="it: error rate 15.7 % > 5 %", healthy=False))
    iid = await _incident_of(console, service)
    path = f"/console/incidents/{iid}"
    try:
        r = await console.post(f"{path}/acknowledge", data={"csrf": await _csrf(console, path)})
        assert r.status_code == 303
        page = (await console.get(r.headers["location"])).text
        assert 'id="acknowledged-by">admin:it-console<' in page and "Acknowledged: escalation stopped." in page

        r = await console.post(f"{path}/resolve", data={"csrf": await _csrf(console, path), "note": "rolled forward"})
        assert r.status_code == 303
        page = (await console.get(path)).text
        assert "<h1>Post-incident report: " in page and "rolled forward" in page
        assert 'class="pill status-resolved"' in page and "<dt>Resolved by</dt><dd>admin:it-console</dd>" in page

        # once resolved, the notifier refuses another resolve: the console says so with its status
        r = await console.post(f"{path}/resolve", data={"csrf": await _csrf(console, path)})
        assert r.status_code == 409 and "already resolved" in r.text
    finally:
        await console.post(f"{path}/resolve", data={"csrf": await _csrf(console, path), "note": "cleanup"})


async def test_the_recovery_page_shows_recovery_as_it_is(console: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=ConsoleSettings().recovery_url) as recovery:
        state = (await recovery.get("/api/recovery/pause")).json()
        newest = (await recovery.get("/api/recovery/actions", params={"limit": 1})).json()
    r = await console.get("/console/recovery")
    assert r.status_code == 200
    banner = "Paused for every service" if state["paused"] else \
        "Paused for" if state["scopes"] else "Running: triggers are acted on"
    assert banner in r.text
    if newest:
        assert str(escape(newest[0]["detail"][:40])) in r.text  # the newest action, as Jinja escapes it
