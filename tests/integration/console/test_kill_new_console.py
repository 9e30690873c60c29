""""Kill all new features" from the console, on a private flags service (real Postgres, Redis and Kafka, its
own schema): on the shared stack it would kill `gamification` under other tests' feet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from pydantic import SecretStr

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from services.flags.app import create_app as create_flags_app
from shared.auth import AuthSettings
from shared.settings import KafkaSettings
from tests.integration.console.conftest import sign_in
from tests.integration.flags.conftest import ADMIN, drop, flags_settings

TOKEN = ADMIN["Authorization"].split()[1]

# recovery does not answer: the flags pages show no kept-off marks, and the rest as usual
NO_RECOVERY = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404)), base_url="http://recovery")


@pytest.fixture
async def private_flags(unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str
                        ) -> AsyncIterator[httpx.AsyncClient]:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url)
    app = create_flags_app(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 5555)), base_url="http://flags") as client:
            yield client
    finally:
        await drop(settings, redis_url)


async def test_the_big_red_button_kills_every_new_feature_that_is_on(private_flags: httpx.AsyncClient) -> None:
    for key, new, state in (("fresh-a", True, "ENABLED"), ("fresh-b", True, "ENABLED"), ("fresh-off", True, "DISABLED"),
                            ("old", False, "ENABLED")):
        r = await private_flags.post("/api/flags", headers=ADMIN, json={"key": key, "new": new, "state": state})
        assert r.status_code == 201, r.text
    app = create_app(ConsoleSettings(), auth=AuthSettings(env="local", admin_token=SecretStr(TOKEN)),
                     backends=SimpleNamespace(flags=private_flags, recovery=NO_RECOVERY))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as console:
        page = (await console.get("/console/flags")).text
        assert 'id="kill-new"' not in page  # read-only: no button
        csrf = await sign_in(console, token=TOKEN, name="carol")
        page = (await console.get("/console/flags")).text
        assert 'id="kill-new"' in page and "2 new feature(s) on (fresh-a, fresh-b)" in page  # the prompt names them

        r = await console.post("/console/flags/_kill-new", headers={
            "HX-Request": "true", "HX-Target": "flags-main", "X-CSRF-Token": csrf, "HX-Prompt": "error rate 7 %"})
        assert r.status_code == 200, r.text
        assert "Killed 2 new feature(s): fresh-a, fresh-b" in r.text

    flags = {f["key"]: f for f in (await private_flags.get("/api/flags")).json()}
    assert {k for k, f in flags.items() if f["killed"]} == {"fresh-a", "fresh-b"}
    assert flags["old"]["state"] == "ENABLED" and flags["fresh-off"]["killed"] is False
    [entry, *_] = (await private_flags.get("/api/flags/fresh-a/audit", headers=ADMIN)).json()
    assert (entry["actor"], entry["reason"]) == ("admin:carol", "error rate 7 %")
