"""memory_high on the native stack: recovery restarts the demo program through supervisord (issue 14).

The stack's recovery runs with RECOVERY_EXECUTOR=supervisord and the demo colours as targets
(.stack/recovery.env, written by stack/up.sh). 480 MB of ballast on the standby colour fires memory_high
for that instance; recovery restarts *that* program through supervisord's XML-RPC, sees a new PID that
answers, publishes RecoveryActionVerified, and the notifier marks the incident mitigated. The active colour
serves throughout and keeps its process. Runs before test_runbook_loop.py (whose memory episode tolerates
the cooldown this one leaves).

It was a non-strict xfail from 2026-11-30 (failed in 2 full CI runs then, cause not found) and passed in every
CI run of the stops after it (4 in a row) and right after a fresh `make up` (2026-12-01): a real test again,
so a failure fails the suite.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.recovery.policy import load_policy
from services.recovery.settings import DEFAULT_POLICY
from shared.events import TriggerCleared, TriggerFired
from tests.e2e.test_runbook_loop import (
    COLOURS, DEMO, FRONT, ROOT, SERVICE, admin_token, put_faults, reset_faults, stack, wait_trigger_ok,  # noqa: F401
    watch_triggers,
)

pytestmark = pytest.mark.e2e
SUPERVISORCTL = [str(ROOT / ".venv" / "bin" / "supervisorctl"), "-c", str(ROOT / ".stack" / "supervisord.conf")]


def supervisor_pid(program: str) -> int:
    """The PID `supervisorctl status` shows for a RUNNING program (what an operator looks at)."""
    out = subprocess.run([*SUPERVISORCTL, "status", program], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"RUNNING\s+pid (\d+)", out)
    assert found, f"supervisorctl status {program}: {out!r}"
    return int(found.group(1))


async def past_cooldown(http: httpx.AsyncClient, trigger: str) -> None:
    """An earlier memory_high action on the demo (a rerun) would put this one in cooldown: wait it out."""
    cooldown = load_policy(DEFAULT_POLICY).cooldown
    r = await http.get(f"{FRONT}/api/recovery/actions", params={"service": SERVICE, "limit": 200})
    assert r.status_code == 200, r.text
    ago = [time.time() - datetime.fromisoformat(a["started_at"]).timestamp() for a in r.json()
           if a.get("trigger") == trigger and a["status"] != "skipped"]
    if ago and min(ago) < cooldown + 1:
        await asyncio.sleep(cooldown + 1 - min(ago))


async def restart_action(http: httpx.AsyncClient, episode_id: str, timeout: float = 45) -> dict[str, Any]:
    """Recovery's action for the episode once the executor is done (its detail names the PIDs)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        r = await http.get(f"{FRONT}/api/recovery/actions", params={"service": SERVICE, "limit": 200})
        last = next((a for a in r.json() if a["episode_id"] == episode_id), None)
        if last and (last["status"] in ("failed", "skipped") or "restarted one at a time" in last["detail"]):
            return dict(last)
        await asyncio.sleep(0.3)
    raise AssertionError(f"recovery did not restart anything for {episode_id} within {timeout}s: {last}")


async def verified_effect(http: httpx.AsyncClient, episode_id: str, timeout: float = 20) -> dict[str, Any]:
    """Recovery's audit entry of the episode once its effect was verified (the notifier's mitigation of the
    incident, its own or one it joined, is tested in tests/unit/notifier/test_mitigated_by_verified_effect.py)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        r = await http.get(f"{FRONT}/api/recovery/actions", params={"service": SERVICE, "limit": 50})
        assert r.status_code == 200, r.text
        last = next((a for a in r.json() if a["episode_id"] == episode_id and a.get("verify_outcome")), None)
        if last is not None:
            assert last["verify_outcome"] == "verified", last
            return dict(last)
        await asyncio.sleep(0.3)
    raise AssertionError(f"no verified effect in recovery's audit for {episode_id} within {timeout}s")


async def serve(http: httpx.AsyncClient, url: str, codes: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            codes.append((await http.get(f"{url}/healthz")).status_code)
        except httpx.TransportError:
            codes.append(0)
        await asyncio.sleep(0.1)


async def test_memory_high_restarts_the_demo_program_through_supervisord(stack: None) -> None:  # noqa: F811
    async with httpx.AsyncClient(timeout=15) as http:
        try:
            await reset_faults(http)
            await wait_trigger_ok(http, "memory_high", None, timeout=30)
            await past_cooldown(http, "memory_high")
            active = (await http.get(f"{DEMO}/")).json()["color"]
            standby = next(c for c in COLOURS if c != active)
            program, kept = f"safeguard:{SERVICE}-{standby}", f"safeguard:{SERVICE}-{active}"
            before, kept_pid = supervisor_pid(program), supervisor_pid(kept)
            codes: list[int] = []
            stop = asyncio.Event()
            async with watch_triggers() as watch, asyncio.TaskGroup() as tg:
                tg.create_task(serve(http, COLOURS[active], codes, stop))
                try:
                    faults = await put_faults(http, COLOURS[standby], grow_memory_mb=480)
                    assert faults["memory_mb"] >= 480, faults
                    await watch.until(lambda: bool(watch.of("memory_high", TriggerFired)), 20,
                                      what="TriggerFired memory_high")
                    fired = watch.of("memory_high", TriggerFired)[0]
                    assert isinstance(fired, TriggerFired) and fired.instance == f"{SERVICE}-{standby}", fired
                    action = await restart_action(http, fired.episode_id)
                    after = supervisor_pid(program)
                    change = f"{SERVICE}-{standby}: pid {before} -> pid {after}"
                    assert action["action"] == "restart_process" and change in action["detail"], (action, after)
                    assert after != before
                    r = await http.get(f"{COLOURS[standby]}/api/faults", headers={
                        "Authorization": f"Bearer {admin_token()}"})
                    assert r.status_code == 200 and r.json()["memory_mb"] == 0, r.text  # a fresh process
                    effect = await verified_effect(http, fired.episode_id)  # recovery's audit: the new PID
                    assert change in effect["effect"], (change, effect)
                    await watch.until(lambda: bool(watch.of("memory_high", TriggerCleared)), 30,
                                      what="TriggerCleared memory_high")
                finally:
                    stop.set()
            assert supervisor_pid(kept) == kept_pid, f"{kept} was restarted too"
            assert codes and set(codes) == {200}, f"{active} did not keep serving: {codes}"
            print(f"\n{program}: pid {before} -> {after} through supervisord ({action['detail']}); "
                  f"{kept} kept pid {kept_pid} and answered {len(codes)} health checks, all 200")
        finally:
            await reset_faults(http)
