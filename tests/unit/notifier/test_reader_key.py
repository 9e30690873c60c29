"""Finding 12 of issue 10: outside local mode, incident details and deliveries need a reader key (or the admin
token); the status page stays public."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.repository import MemoryIncidentStore
from services.notifier.service import incident_id_for
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender
from tests.unit.notifier.test_api import TOKEN, fired

IID = incident_id_for("demo", "ep1")
PRIVATE = ["/api/incidents", f"/api/incidents/{IID}", f"/api/incidents/{IID}/deliveries",
           f"/api/incidents/{IID}/report"]


async def _codes(env: str, headers: dict[str, str], *, keys: dict[str, SecretStr] | None = None) -> dict[str, int]:
    auth = AuthSettings(admin_token=SecretStr(TOKEN), env=env, client_keys=keys or {})  # type: ignore[arg-type]
    app = create_app(NotifierSettings(policy_file=CONFIG, auth=auth), publisher=InMemoryPublisher(),
                     store=MemoryIncidentStore(), sender=FakeSender(), consume=False)
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        await app.state.notifier.open_incident(fired())
        return {p: (await c.get(p, headers=headers)).status_code for p in [*PRIVATE, "/status", "/status.json"]}


@pytest.mark.parametrize("env", ["production", "staging", "test"])
async def test_details_need_a_key_outside_local_mode(env: str) -> None:
    codes = await _codes(env, {})
    assert {p: codes[p] for p in PRIVATE} == dict.fromkeys(PRIVATE, 401)
    assert codes["/status"] == codes["/status.json"] == 200


async def test_the_admin_token_or_a_reader_key_reads() -> None:
    keys = {"oncall": SecretStr("reader-key")}
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"X-API-Key": "reader-key"}):
        codes = await _codes("production", headers, keys=keys)
        assert [codes[p] for p in PRIVATE[:3]] == [200, 200, 200] and codes[PRIVATE[3]] == 404  # no report yet
    assert (await _codes("production", {"X-API-Key": "wrong"}, keys=keys))[PRIVATE[1]] == 401


async def test_local_mode_stays_open() -> None:
    codes = await _codes("local", {})
    assert [codes[p] for p in PRIVATE[:3]] == [200, 200, 200]
