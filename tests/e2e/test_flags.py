"""The flag service through the front door (HAProxy :3000), the way the runbook drives it."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from sdk.flags import FlagClient

pytestmark = pytest.mark.e2e
FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")


@pytest.fixture(scope="module")
def front() -> str:
    try:
        httpx.get(FRONT + "/api/flags", timeout=3)
    except httpx.HTTPError as exc:
        pytest.fail(f"front door {FRONT} does not answer ({exc}); run `make up`")
    return FRONT


def test_runbook_curl_verbatim_turns_gamification_off(front: str) -> None:
    # the runbook's exact command: no Content-Type header, no token
    out = subprocess.run(["curl", "-s", "-X", "POST", f"{front}/api/system/status",
                          "-d", '{"feature": "gamification", "enabled": false}'],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    assert '"enabled":false' in out, out
    r = httpx.post(f"{front}/ofrep/v1/evaluate/flags/gamification", json={"context": {"targetingKey": "u1"}})
    assert r.status_code == 200
    assert (r.json()["value"], r.json()["reason"]) == (False, "DISABLED")
    assert "ratelimit" in r.headers and "ratelimit-policy" in r.headers


def test_forged_forwarded_for_does_not_bypass(front: str) -> None:
    r = httpx.post(f"{front}/api/flags/gamification/enable", headers={"X-Forwarded-For": "127.0.0.1"})
    assert r.status_code == 401


async def test_sdk_client_through_the_front_door(front: str) -> None:
    async with FlagClient(front) as client:
        assert client.connected and "gamification" in client.keys()
        assert client.get_boolean("gamification", True) is False
