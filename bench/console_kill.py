"""Issue 15's third console figure: from a kill clicked in the console to the demo serving it off.

Against the running stack (`make up`), through the front door :3000, `gamification` on the demo :8100:
1. the console's kill: the request the Kill button sends (htmx `POST /console/flags/gamification/kill`,
   signed in, CSRF header), then the demo polled until `/api/gamification/leaderboard` answers 404;
2. the baseline, measured in the same run: the runbook's Step 1 (`POST /api/system/status
   {"feature": "gamification", "enabled": false}`), the same poll.
The flag is turned back on between rounds and left as it was found. (The browser's own part, a click and
htmx's swap, is measured in tests/e2e/test_console_flags.py: 56-225 ms to the demo serving it off.)
"""

from __future__ import annotations

import os
import re
import statistics
import time
from pathlib import Path

import httpx

from bench.report import record

ROOT = Path(__file__).resolve().parents[1]
FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")
DEMO = os.environ.get("SAFEGUARD_DEMO_URL", "http://127.0.0.1:8100")
FLAG, ROUNDS = "gamification", 10
PROBE = f"/api/gamification/leaderboard?user=bench-console-kill"


def _token() -> str:
    return os.environ.get("SAFEGUARD_ADMIN_TOKEN") or (ROOT / ".stack" / "admin-token").read_text().strip()


async def _until(http: httpx.AsyncClient, status: int, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if (await http.get(DEMO + PROBE)).status_code == status:
            return time.monotonic() - started
    raise RuntimeError(f"the demo did not answer {status} within {timeout}s")


async def _sign_in(http: httpx.AsyncClient) -> str:
    r = await http.post(f"{FRONT}/console/login", data={"token": _token(), "name": "bench", "next": "/console/flags"},
                        follow_redirects=True)
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', r.text)
    if r.status_code != 200 or found is None:
        raise RuntimeError(f"console sign-in failed: HTTP {r.status_code}")
    return found.group(1)


async def _round(http: httpx.AsyncClient, kill: httpx.Request, admin: dict[str, str]) -> float:
    await http.post(f"{FRONT}/api/flags/{FLAG}/enable", headers=admin, json={"reason": "bench console_kill"})
    await _until(http, 200)
    started = time.monotonic()
    r = await http.send(kill)
    if r.status_code >= 400:
        raise RuntimeError(f"{kill.method} {kill.url.path}: HTTP {r.status_code} {r.text[:200]}")
    await _until(http, 404)
    return time.monotonic() - started


def _show(name: str, xs: list[float], base: float) -> None:
    p50 = statistics.median(xs)
    print(f"{name:<52} p50 {p50 * 1000:7.1f} ms  max {max(xs) * 1000:7.1f} ms  ({p50 / base:4.2f}x baseline, n={len(xs)})")
    if not name.startswith("baseline"):
        record(f"{name}, p50", p50 * 1000, "ms", baseline="runbook Step 1 curl -> demo serves off, p50",
               baseline_value=base * 1000, lower_is_better=True, note=f"max {max(xs) * 1000:.1f} ms, n={len(xs)}")


async def main() -> None:
    admin = {"Authorization": f"Bearer {_token()}"}
    async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(keepalive_expiry=2.0)) as http:
        before = (await http.get(f"{FRONT}/api/flags/{FLAG}")).json()
        csrf = await _sign_in(http)
        console, runbook = [], []
        try:
            for _ in range(ROUNDS):
                console.append(await _round(http, http.build_request(
                    "POST", f"{FRONT}/console/flags/{FLAG}/kill", data={"reason": "bench console_kill"},
                    headers={"X-CSRF-Token": csrf, "HX-Request": "true"}), admin))
                runbook.append(await _round(http, http.build_request(
                    "POST", f"{FRONT}/api/system/status", json={"feature": FLAG, "enabled": False}), admin))
        finally:
            action = "enable" if before.get("state") == "ENABLED" and not before.get("killed") else "disable"
            await http.post(f"{FRONT}/api/flags/{FLAG}/{action}", headers=admin, json={"reason": "bench: as found"})
    base = statistics.median(runbook)
    _show("baseline: runbook Step 1 curl -> demo serves off", runbook, base)
    _show("console Kill (the button's request) -> demo serves off", console, base)
