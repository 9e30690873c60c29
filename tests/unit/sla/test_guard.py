"""The SLA service's web server (Faust/aiohttp) checks Host like every other service (issue 10 #7)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.sla.app import create_app
from services.sla.settings import SlaSettings


@pytest.mark.parametrize(("host", "status"), [("127.0.0.1:8003", 200), ("localhost:8003", 200), ("sla:8003", 200),
                                              ("rebind.evil.example:8003", 400)])
async def test_sla_views_check_the_host(host: str, status: int) -> None:
    web = create_app(SlaSettings(app_id="sla-guard-unit", policy_file=None)).app.web
    web.init_server()
    async with TestClient(TestServer(web.web_app)) as c:
        r = await c.get("/api/sla", headers={"Host": host})
        assert r.status == status, await r.text()
        if status == 400:
            assert (await r.json())["errorCode"] == "HOST_NOT_ALLOWED"
