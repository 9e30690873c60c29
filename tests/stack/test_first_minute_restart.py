"""Issue 15, a truthful first minute, on the real stack: `make down && make up`, then the
runbook's Step 2 at once. `/api/health` must be 200 (pass) the moment `make up` returns, and
the system status must not name a running service as down.

It stops and starts the whole native stack, so conftest runs it after every other test."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.restarts_stack


def _make(target: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "POSTGRES_", "REDIS_"))}
    return subprocess.run(["make", "-s", target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_make_down_and_up_then_health_passes_at_once() -> None:
    if not (ROOT / ".stack" / "supervisord.conf").exists():
        pytest.fail("needs the native stack of this checkout (make up / make test start it)")
    front = f"http://127.0.0.1:{os.environ.get('FRONT_PORT', '3000')}"
    down = _make("down")
    assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
    started = time.monotonic()
    up = _make("up")
    up_s = time.monotonic() - started
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    with httpx.Client(timeout=5) as client:
        health = client.get(f"{front}/api/health")
        status = client.get(f"{front}/api/system/status").json()
    assert health.status_code == 200, (up_s, health.text[:1500])
    assert health.json()["status"] == "pass", health.text[:1500]
    down_now = {name: s for name, s in status["services"].items() if s.get("state") == "down"}
    assert not down_now, down_now
    assert status["status"] in ("operational", "degraded"), status.get("notes")
