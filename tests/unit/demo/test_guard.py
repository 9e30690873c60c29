"""The demo app refuses DNS-rebound hosts and cross-site writes to its fault switches (issue 10 #7)."""

from __future__ import annotations

import httpx
import pytest

from examples.demo.app import create_app
from examples.demo.settings import DemoSettings

FAULTS = b'{"error_rate": 1.0}'


def _client() -> httpx.AsyncClient:
    app = create_app(DemoSettings(commands=False))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 1)),
                             base_url="http://127.0.0.1:8100")


async def test_a_rebound_host_cannot_reach_the_faults() -> None:
    async with _client() as c:
        r = await c.put("/api/faults", content=FAULTS, headers={"Host": "attacker.example:8100",
                                                                 "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["errorCode"] == "HOST_NOT_ALLOWED"


@pytest.mark.parametrize("headers", [{"Origin": "http://attacker.example"}, {"Sec-Fetch-Site": "cross-site"}])
async def test_a_web_page_cannot_inject_faults(headers: dict[str, str]) -> None:
    async with _client() as c:
        r = await c.put("/api/faults", content=FAULTS, headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 403 and r.json()["errorCode"] == "CROSS_SITE"
