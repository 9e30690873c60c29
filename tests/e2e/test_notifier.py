"""The communication plan through the front door: status page, its JSON, and the incident list."""

from __future__ import annotations

import os

import httpx

FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")


def test_status_page_and_incidents_through_the_front_door() -> None:
    with httpx.Client(base_url=FRONT, timeout=10) as client:
        page = client.get("/status")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        status = client.get("/status.json")
        assert status.status_code == 200, status.text
        body = status.json()
        incidents = client.get("/api/incidents")
        assert incidents.status_code == 200, incidents.text
        assert client.post("/api/incidents/does-not-exist/acknowledge").status_code in (401, 403)
    assert isinstance(body, dict) and body
