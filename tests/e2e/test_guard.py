"""Through the front door (HAProxy :3000): a web page in the operator's browser cannot turn a feature on,
a DNS-rebound name is refused, and the runbook's curl still works verbatim (issue 10 #7)."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

pytestmark = pytest.mark.e2e
FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")
RUNBOOK_URL = FRONT.replace("127.0.0.1", "localhost")  # the runbook writes http://localhost:3000/...
ENABLE = '{"feature": "gamification", "enabled": true}'


def _runbook_curl() -> str:
    """Step 1 of the runbook, character for character."""
    return subprocess.run(["curl", "-s", "-X", "POST", f"{RUNBOOK_URL}/api/system/status",
                           "-d", '{"feature": "gamification", "enabled": false}'],
                          capture_output=True, text=True, timeout=20, check=True).stdout


def _value() -> object:
    r = httpx.post(f"{FRONT}/ofrep/v1/evaluate/flags/gamification", json={"context": {"targetingKey": "u1"}})
    assert r.status_code == 200, r.text
    return r.json()["value"]


@pytest.fixture
def killed() -> None:
    try:
        out = _runbook_curl()
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.fail(f"front door {FRONT} does not answer ({exc}); run `make up`")
    assert '"enabled":false' in out, out
    assert _value() is False


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example", "Content-Type": "text/plain"},  # fetch(..., {mode: "no-cors"})
    {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"},  # an HTML form
])
def test_a_web_page_cannot_turn_the_feature_back_on(killed: None, headers: dict[str, str]) -> None:
    r = httpx.post(f"{FRONT}/api/system/status", content=ENABLE, headers=headers)
    assert r.status_code == 403 and r.json()["errorCode"] == "CROSS_SITE", r.text
    assert _value() is False


def test_a_rebound_host_name_is_refused(killed: None) -> None:
    r = httpx.post(f"{FRONT}/api/system/status", content=ENABLE, headers={"Host": "rebind.evil.example:3000"})
    assert r.status_code == 400 and r.json()["errorCode"] == "HOST_NOT_ALLOWED", r.text
    assert _value() is False


def test_a_huge_body_is_413_at_the_front_door() -> None:
    r = httpx.post(f"{FRONT}/ofrep/v1/evaluate/flags/gamification", content=b"{" + b" " * 2_000_000 + b"}")
    assert r.status_code == 413, r.text
