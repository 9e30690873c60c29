"""The SLA API through the front door (HAProxy :3000 -> sla :8003), as an operator uses it."""

from __future__ import annotations

import os

import httpx
import pytest

pytestmark = pytest.mark.e2e

FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")


async def test_sla_overview_and_unknown_service_through_the_front_door() -> None:
    async with httpx.AsyncClient(base_url=FRONT, timeout=5) as http:
        try:
            overview = await http.get("/api/sla")
        except httpx.ConnectError as exc:
            pytest.fail(f"front door {FRONT} does not answer ({exc}); run `make up`")
        missing = await http.get("/api/sla/no-such-service-e2e")
    assert overview.status_code == 200
    body = overview.json()
    assert body["objective"] == 0.999 and body["period_days"] == 30
    assert isinstance(body["services"], list) and isinstance(body["active_triggers"], list)
    for service in body["services"]:
        assert set(service["triggers"]) == {"error_rate_high", "latency_high", "memory_high", "db_connection_lost", "budget_burn"}
    assert missing.status_code == 404 and "no SLA data" in missing.json()["detail"]


async def test_the_sla_port_serves_our_views_only() -> None:
    """Faust's own views (/table shows table data, /router the cluster) are not served (issue 10 #12)."""
    base = f"http://127.0.0.1:{os.environ.get('SLA_PORT', '8003')}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        ours = [(await http.get(p)).status_code for p in ("/healthz", "/api/sla", "/metrics")]
        faust = {p: (await http.get(p)).status_code for p in ("/", "/table/", "/router/", "/graph/", "/assignment/")}
    assert ours == [200, 200, 200]
    assert set(faust.values()) == {404}, faust
