"""The runbook's step 2 through the front door: `curl localhost:3000/api/health` and `/api/system/status`."""

from __future__ import annotations

import os

import httpx
import pytest

FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")


@pytest.fixture
async def front() -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=FRONT, timeout=10) as client:
        try:
            await client.get("/api/health")
        except httpx.HTTPError as exc:
            pytest.fail(f"front door {FRONT} does not answer ({exc}); run `make up`")
        yield client


async def test_api_health_is_ietf_health_json(front: httpx.AsyncClient) -> None:
    r = await front.get("/api/health")
    assert r.headers["content-type"] == "application/health+json"
    doc = r.json()
    assert doc["status"] in ("pass", "warn", "fail")
    assert (r.status_code == 503) == (doc["status"] == "fail")
    assert "postgres:responseTime" in doc["checks"] and "kafka:brokers" in doc["checks"]
    for entries in doc["checks"].values():
        for e in entries:
            assert {"componentType", "observedValue", "observedUnit", "status", "time"} <= set(e)
    assert doc["checks"]["postgres:responseTime"][0]["status"] in ("pass", "warn")


async def test_system_status_lists_services_dependencies_flags_incidents_budget(front: httpx.AsyncClient) -> None:
    r = await front.get("/api/system/status")
    assert r.status_code == 200
    body = r.json()
    assert {"flags", "sla", "recovery", "notifier"} <= set(body["services"])
    assert {"postgres", "redis", "kafka"} <= set(body["dependencies"])
    assert body["dependencies"]["postgres"]["state"] == "up"
    for key in ("breakers", "flags", "incidents", "sla", "apps", "notes", "feed"):
        assert key in body
    assert body["feed"]["connected"] is True
