"""Issue 14's end-to-end figure: from the first bad request to the incident mitigated, then resolved.

Against the running stack (`make up`): `gamification` is turned on (a new feature), 30 % of the demo's
answers become 500 (its fault API, both colours), and steady traffic (40 req/s through HAProxy :8100)
runs until the notifier's incident holding the episode says `mitigated_at` (recovery's
`disable_new_features` verified: the flag serves off), then the fault is removed and the traffic runs
until the incident is resolved. Times come from the incident's own timestamps against the first 500
the client saw (same clock: loopback, one machine). Compared with the runbook's targets: detect within
5 min (auto-recovery), mitigate within 15 min, resolve within 1 h. Baseline from the same run: the
detection floor, first bad request -> incident opened. The flag is left as it was found. Rounds wait out
recovery's cooldown (config/recovery.yaml: no second automatic action for the same service and trigger
within it), so a run takes about 2 minutes a round.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.report import record
from tests.e2e.demo import Traffic, restore_flag

ROOT = Path(__file__).resolve().parents[1]
FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")
COLOURS = [f"http://127.0.0.1:{os.environ.get(k, d)}" for k, d in (("DEMO_BLUE_PORT", "8101"),
                                                                    ("DEMO_GREEN_PORT", "8102"))]
SERVICE, FLAG, ROUNDS, RPS = os.environ.get("DEMO_SERVICE", "demo"), "gamification", 3, 40.0
TARGETS = {"detect": 300.0, "mitigate": 900.0, "resolve": 3600.0}  # the runbook's 5 min / 15 min / 1 h


def _admin() -> dict[str, str]:
    token = os.environ.get("SAFEGUARD_ADMIN_TOKEN") or (ROOT / ".stack" / "admin-token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def _sla_episode(http: httpx.AsyncClient) -> str | None:
    state = (await http.get(f"{FRONT}/api/sla/{SERVICE}")).json()["triggers"]["error_rate_high"]
    return state["episode_id"] if state.get("active") else None


async def _incident(http: httpx.AsyncClient, episode_id: str) -> dict[str, Any] | None:
    """The incident holding the episode: its own, or the demo incident it joined."""
    for inc in (await http.get(f"{FRONT}/api/incidents", params={"limit": 20, "days": 1}, headers=_admin())).json():
        if inc["service"] == SERVICE and (inc["episode_id"] == episode_id
                                          or any(f"(episode {episode_id})" in e["text"] for e in inc["timeline"])):
            return dict(inc)
    return None


async def _until(traffic: Traffic, what: str, timeout: float, probe: Any) -> Any:
    deadline = time.monotonic() + timeout
    while (found := await probe()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        await traffic.run_for(0.25)
    return found


async def _cooldown(http: httpx.AsyncClient) -> None:
    """Wait until recovery may act on the demo's error rate again (its last action is older than the cooldown)."""
    from services.recovery.policy import load_policy

    cooldown = load_policy(ROOT / "config" / "recovery.yaml").cooldown
    actions = (await http.get(f"{FRONT}/api/recovery/actions", params={"service": SERVICE, "limit": 50})).json()
    acted = [_ts(a["started_at"]) for a in actions if a["trigger"] == "error_rate_high" and a["status"] != "skipped"]
    if acted and (left := max(acted) + cooldown + 1 - time.time()) > 0:
        print(f"  (waiting {left:.0f} s: recovery's cooldown of {cooldown:.0f} s)", flush=True)
        await asyncio.sleep(left)


async def _round(http: httpx.AsyncClient) -> dict[str, float]:
    await _cooldown(http)
    traffic = Traffic(http, rps=RPS, budget=10**9, lenient=True)
    await _until(traffic, "no leftover episode", 60, lambda: _none_firing(http))
    r = await http.post(f"{FRONT}/api/flags/{FLAG}/enable", headers=_admin(), json={"reason": "bench incident_mitigated"})
    r.raise_for_status()
    for url in COLOURS:
        (await http.put(f"{url}/api/faults", json={"error_rate": 0.3})).raise_for_status()
    try:
        episode = await _until(traffic, "TriggerFired error_rate_high", 60, lambda: _sla_episode(http))
        inc = await _until(traffic, "incident mitigated", 60, lambda: _mitigated(http, episode))
    finally:
        for url in COLOURS:
            await http.delete(f"{url}/api/faults")
    removed = time.time()
    inc = await _until(traffic, "incident resolved", 90, lambda: _resolved(http, episode))
    return {"detect": _ts(inc["opened_at"]) - traffic.first_bad,
            "mitigate": _ts(inc["mitigated_at"]) - traffic.first_bad,
            "resolve": _ts(inc["resolved_at"]) - removed}


async def _none_firing(http: httpx.AsyncClient) -> bool | None:
    return True if await _sla_episode(http) is None else None


async def _mitigated(http: httpx.AsyncClient, episode: str) -> dict[str, Any] | None:
    actions = (await http.get(f"{FRONT}/api/recovery/actions", params={"service": SERVICE, "limit": 50})).json()
    if skipped := [a["detail"] for a in actions if a["episode_id"] == episode and a["status"] == "skipped"]:
        raise RuntimeError(f"recovery skipped episode {episode}: {skipped[0]}")
    inc = await _incident(http, episode)
    return inc if inc and inc.get("mitigated_at") else None


async def _resolved(http: httpx.AsyncClient, episode: str) -> dict[str, Any] | None:
    inc = await _incident(http, episode)
    return inc if inc and inc.get("resolved_at") else None


async def main() -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        found = (await http.get(f"{FRONT}/api/flags/{FLAG}")).json()
        rounds: list[dict[str, float]] = []
        try:
            for _ in range(ROUNDS):
                rounds.append(await _round(http))
        finally:
            await restore_flag(http, FLAG, found, auth=_admin(), reason="bench incident_mitigated: restore")
    print(f"first bad request -> incident, {ROUNDS} rounds, 30 % errors at {RPS:.0f} req/s on the demo "
          f"(runbook targets: detect 5 min, mitigate 15 min, resolve 1 h)")
    for name, target in TARGETS.items():
        values = [r[name] for r in rounds]
        p50 = statistics.median(values)
        since = "fault removed" if name == "resolve" else "first bad request"
        print(f"  {name:<9} p50 {p50:6.2f} s  max {max(values):6.2f} s  (from {since})  "
              f"{p50 / target:.4f} of the runbook's {target / 60:g} min")
        record(f"incident: time to {name} (from {since}), p50", p50, "s", baseline=f"runbook: {target / 60:g} min",
               baseline_value=target, target=1.0, lower_is_better=True, spread=(min(values), max(values)))
    detect = statistics.median(r["detect"] for r in rounds)
    mitigate = statistics.median(r["mitigate"] for r in rounds)
    print(f"  mitigate / detect (baseline, same run): {mitigate / detect:.2f}x; recovery's own share "
          f"{mitigate - detect:.2f} s")
    record("incident: first bad request -> mitigated, p50", mitigate, "s", baseline="first bad request -> detected",
           baseline_value=detect, lower_is_better=True, note="recovery's share of the time to mitigate")
