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


def test_maintenance_windows_through_the_front_door() -> None:
    """`/api/maintenance` is routed to the notifier (a 404 "no route at the front door" before)."""
    with httpx.Client(base_url=FRONT, timeout=10) as client:
        listed = client.get("/api/maintenance")
        assert listed.status_code == 200, listed.text
        assert {"in_progress", "upcoming", "past"} <= listed.json().keys()
        refused = client.post("/api/maintenance", json={"title": "x"})
        assert refused.status_code in (401, 403, 422), refused.text  # routed: the notifier answers
        assert "no route" not in refused.text
        assert client.get("/api/maintenance/mw-does-not-exist").status_code == 404


def test_who_is_on_call_through_the_front_door() -> None:
    with httpx.Client(base_url=FRONT, timeout=10) as client:
        r = client.get("/api/oncall")
    assert r.status_code == 200 and "no route" not in r.text, r.text
