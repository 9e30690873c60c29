"""The Node demo's runbook loop, timed on the running stack (`make bench B=node_demo`).

Each run starts its own Node demo (examples/demo-node, a fresh OTel `service.name` so recovery's
per-service cooldown never holds an action back, and the stack's own demo-node is left alone), turns
`gamification` on, injects error_rate 0.5 and sends 40 req/s:
  first bad request (an injected 500) -> OTLP -> intake -> RequestsObserved -> SLA TriggerFired
  -> recovery `disable_new_features` (kill) -> flagd sync stream -> the Node app serves the feature off.
Baseline in the same run: a kill by the flag API -> off in the same Node app (the flag path alone).
Figures: p50 / max of each and their ratio. Puts `gamification` back as it was found.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.report import record, runbook_limit

ROOT = Path(__file__).resolve().parents[1]
FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")
FLAG = "gamification"
RUNS = int(os.environ.get("BENCH_NODE_RUNS", "3"))
RPS = 40
LEADERBOARD = "/api/gamification/leaderboard?user=bench"


def _token() -> str:
    return os.environ.get("SAFEGUARD_ADMIN_TOKEN") or (ROOT / ".stack" / "admin-token").read_text().strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_node(service: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "OTEL_SERVICE_NAME": service, "DEMO_COLOR": "bench"}
    proc = subprocess.Popen(["node", "--require", "./examples/demo-node/src/telemetry.js",
                             "examples/demo-node/src/server.js"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=1) as http:
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError(f"the Node demo exited ({proc.returncode}); is the stack up (make up)?")
            try:
                if (await http.get(f"{url}/healthz")).json()["flags"]["status"] == "READY":
                    return proc, url
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"the Node demo at {url} did not get its flags within 10 s")


async def _flag(http: httpx.AsyncClient, verb: str) -> None:
    r = await http.post(f"{FRONT}/api/flags/{FLAG}/{verb}", json={"reason": "bench node_demo"})
    r.raise_for_status()


async def _until_off(http: httpx.AsyncClient, url: str, *, timeout: float, also: Any = None) -> float:
    """perf_counter when the app first answers 404 on the leaderboard (calling `also()` between polls)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if (await http.get(f"{url}{LEADERBOARD}")).status_code == 404:
            return time.perf_counter()
        if also is not None:
            await also()
        await asyncio.sleep(0.005)
    raise RuntimeError(f"{url}: the feature was not off within {timeout}s")


async def _on(http: httpx.AsyncClient, url: str) -> None:
    await _flag(http, "enable")
    for _ in range(400):
        if (await http.get(f"{url}{LEADERBOARD}")).status_code == 200:
            return
        await asyncio.sleep(0.005)
    raise RuntimeError(f"{url}: gamification not on 2 s after enable")


async def _kill_by_api(http: httpx.AsyncClient, url: str) -> float:
    await _on(http, url)
    t0 = time.perf_counter()
    await _flag(http, "kill")
    return (await _until_off(http, url, timeout=5)) - t0


async def _loop(http: httpx.AsyncClient, url: str) -> tuple[float, float]:
    """(first bad request -> off in the app, s; requests sent)."""
    await _on(http, url)
    (await http.put(f"{url}/api/faults", json={"error_rate": 0.5})).raise_for_status()
    first_bad: list[float] = []
    sent = 0

    async def traffic() -> None:
        nonlocal sent
        due = int((time.perf_counter() - start) * RPS) - sent
        if due > 0:
            sent += due
            for r in await asyncio.gather(*(http.get(f"{url}/") for _ in range(due))):
                if r.status_code == 500 and not first_bad:
                    first_bad.append(time.perf_counter())

    start = time.perf_counter()
    off = await _until_off(http, url, timeout=30, also=traffic)
    assert first_bad, "no injected failure before the feature went off"
    return off - first_bad[0], sent


async def _clear(http: httpx.AsyncClient, url: str, service: str) -> None:
    """Clean traffic until the episode of this service has cleared (no open incident left behind)."""
    (await http.delete(f"{url}/api/faults")).raise_for_status()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        await asyncio.gather(*(http.get(f"{url}/") for _ in range(4)))
        r = await http.get(f"{FRONT}/api/sla/{service}")
        if r.status_code == 200 and not r.json()["triggers"]["error_rate_high"]["active"]:
            return
        await asyncio.sleep(0.1)
    print(f"  (error_rate_high of {service} still active after 40 s of clean traffic)")


async def main() -> None:
    async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {_token()}"}) as http:
        found = (await http.get(f"{FRONT}/api/flags/{FLAG}")).json()
        loops: list[float] = []
        kills: list[float] = []
        try:
            for i in range(RUNS):
                service = f"demo-node-bench-{uuid.uuid4().hex[:6]}"
                proc, url = await _start_node(service)
                try:
                    kills += [await _kill_by_api(http, url) for _ in range(5)]
                    loop_s, sent = await _loop(http, url)
                    loops.append(loop_s)
                    print(f"  run {i + 1}: first bad request -> off in the Node app {loop_s * 1000:.0f} ms "
                          f"({sent} requests)", flush=True)
                    await _clear(http, url, service)
                finally:
                    proc.terminate()
                    proc.wait(timeout=10)
        finally:
            await _flag(http, "enable" if found["state"] == "ENABLED" and not found["killed"]
                        else "kill" if found["killed"] else "disable")
    loop_ms, kill_ms = statistics.median(loops) * 1000, statistics.median(kills) * 1000
    print(f"Node demo, {RUNS} runs: first bad request -> feature off in the app: p50 {loop_ms:.0f} ms, "
          f"max {max(loops) * 1000:.0f} ms")
    print(f"baseline, {len(kills)} kills by the flag API -> off in the same app (flagd sync stream): "
          f"p50 {kill_ms:.1f} ms, max {max(kills) * 1000:.1f} ms")
    record(f"Node demo: first bad request -> feature off, p50 of {RUNS}", loop_ms, "ms",
           baseline="kill by the flag API -> off in the same app, p50", baseline_value=kill_ms, lower_is_better=True,
           spread=(min(loops) * 1000, max(loops) * 1000))
    runbook_limit(f"Node demo: first bad request -> feature off, worst of {RUNS}", max(loops), limit_s=300,
                  what="auto-recovery within 5 min")
    print(f"ratio: the whole loop takes {loop_ms / kill_ms:.0f}x the flag path alone "
          f"(the rest: metrics export interval, intake, SLA window, recovery)")
