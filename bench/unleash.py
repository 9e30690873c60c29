"""Safeguard beside the Unleash server (npm `unleash-server` 8.2.0, OSS), both measured in this run (issue 12).

Unleash runs from a cache folder outside the tracked files (.stack/bench/unleash, npm-installed once, with
Node 22 from npm when the machine's Node is older), on a free loopback port with its own throwaway Postgres,
its SDK rate limits raised so every answer is a 200. The same flag on both sides: on for users whose email
ends with @example.com (Unleash: flexibleRollout 100 % with a STR_ENDS_WITH constraint on `email`).

1. Per-request evaluation over HTTP, same load tool (wrk -t2 -c16 for UNLEASH_SECONDS, else a Python
   client), one context and 1,000 distinct contexts, after a warm-up of both: Safeguard's OFREP single
   evaluation (a private flags service, one process, its limiter raised as Unleash's) against Unleash's
   frontend API (`GET /api/frontend?userId=...&email=...`: every enabled flag for the context; there is no
   per-flag endpoint, and here it holds this one flag). UNLEASH_FRONT_LOAD=1 adds the running stack's front
   door :3000 with its default limits (429s not counted): off by default, because loopback callers share
   one rate-limit bucket and the load would starve everyone else using the stack.
2. Kill propagation from the disable call being sent to each client serving the flag off: Safeguard's SDK
   (SSE) on the running stack (through the front door :3000; on one instance; the call on one instance and
   the streams on the other) against UnleashClient (Python, polling /api/client/features) at its default
   15 s refresh and at 1 s. Several clients per side; bench/_unleash_kill.py spreads Unleash's poll phases.

    python -m bench unleash   # UNLEASH_SECONDS=8 UNLEASH_KILLS=20 UNLEASH_KILLS_1S=5 UNLEASH_KILLS_15S=3
                              # UNLEASH_CLIENTS=4 UNLEASH_FRONT_LOAD=; needs the stack up (make up) and its
                              # env loaded, and npm on the first run (the install)
"""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx

from bench._unleash_kill import Delays, safeguard_kills, unleash_kills
from bench._unleash_load import Figures, Request, contexts, loader, measure
from bench._unleash_server import VERSION, UnleashServer, unleash_server
from bench.flags import TOKEN as PRIVATE_TOKEN
from bench.flags import flags_service
from bench.report import record

__all__ = ["main"]

KILLS = int(os.environ.get("UNLEASH_KILLS", "20"))
KILLS_1S = int(os.environ.get("UNLEASH_KILLS_1S", "5"))
KILLS_15S = int(os.environ.get("UNLEASH_KILLS_15S", "3"))
CLIENTS = int(os.environ.get("UNLEASH_CLIENTS", "4"))
WARMUP_S = 3.0
FRONT_LOAD = os.environ.get("UNLEASH_FRONT_LOAD", "") == "1"
FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")
PEER = f"Unleash {VERSION} OSS"
RULE = {"new": False, "state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
        "offVariant": "off", "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}}


def _admin_token() -> str:
    token = os.environ.get("SAFEGUARD_ADMIN_TOKEN")
    if not token:
        raise RuntimeError("SAFEGUARD_ADMIN_TOKEN unset: load the stack's env (set -a; . .stack/env; set +a)")
    return token


async def _create(base: str, token: str, key: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        (await c.post("/api/flags", json={"key": key, **RULE, "description": "bench/unleash.py"})).raise_for_status()


async def _delete(base: str, token: str, key: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        r = await c.delete(f"/api/flags/{key}", params={"reason": "bench/unleash.py done"})
        if r.status_code not in (204, 404):
            print(f"  could not delete {key} on {base}: {r.status_code} {r.text[:200]}")


def _print(name: str, f: Figures) -> None:
    print(f"    {name:<34} {f.line()}")


async def evaluation(server: UnleashServer, key: str) -> None:
    print(f"per-request evaluation over HTTP, {loader()}, loopback, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    async with flags_service("unleash") as (private, _port):
        await _create(private, PRIVATE_TOKEN, key)
        warm = contexts(1000)  # node's JIT and both sides' caches: not measured
        for req in (Request.frontend(server.base, warm, server.frontend), Request.ofrep(private, key, warm, {})):
            await measure(req, seconds=WARMUP_S)
        for distinct in (1, 1000):
            users = contexts(distinct)
            label = "one context" if distinct == 1 else f"{distinct} contexts"
            peer = await measure(Request.frontend(server.base, users, server.frontend))
            ours = await measure(Request.ofrep(private, key, users, {}))
            if not (peer.ok_rps and ours.ok_rps):
                raise RuntimeError(f"{label}: a side answered no 2xx at all: {peer} {ours}")
            print(f"  {label}:")
            _print(f"{PEER} frontend API (limits raised)", peer)
            _print("safeguard OFREP (limiter raised)", ours)
            print(f"    ratio: x{ours.ok_rps / peer.ok_rps:.2f} of Unleash's throughput, "
                  f"p50 x{ours.p50_ms / peer.p50_ms:.2f}, p99 x{ours.p99_ms / peer.p99_ms:.2f}")
            base = f"{PEER} frontend API, {label}"
            record(f"OFREP single, {label}", ours.ok_rps, "req/s", baseline=base, baseline_value=peer.ok_rps,
                   note=f"p50 {ours.p50_ms:.2f} ms vs {peer.p50_ms:.2f} ms; both limiters raised")
            record(f"OFREP single, {label}, p99", ours.p99_ms, "ms", baseline=f"{base}, p99",
                   baseline_value=peer.p99_ms, lower_is_better=True)
            if FRONT_LOAD:
                await _front_door(key, users, label, peer)


async def _front_door(key: str, users: list[tuple[str, str]], label: str, peer: Figures) -> None:
    """The stack's front door with its default limits: loopback callers share one bucket, so this load
    starves the other users of the stack for its duration (UNLEASH_FRONT_LOAD=1 only)."""
    door = await measure(Request.ofrep(FRONT, key, users, {}))
    _print("safeguard OFREP via :3000 (defaults)", door)
    record(f"OFREP single via :3000 (default limits), {label}", door.ok_rps, "2xx/s",
           baseline=f"{PEER} frontend API, {label}", baseline_value=peer.ok_rps,
           note=f"non-2xx {door.non_2xx}/{door.total}")


def _paths() -> list[tuple[str, str, str]]:
    """(name, where the disable call goes, where the SDKs follow): the front door, then each path behind it."""
    one, two = (f"http://127.0.0.1:{os.environ.get(v, d)}" for v, d in (("FLAGS_PORT", "8001"), ("FLAGS_PORT_2", "8011")))
    return [("via :3000 (HAProxy, 2 instances)", FRONT, FRONT), ("one instance (call + streams)", one, one),
            ("across instances (Redis pub/sub)", one, two)]


async def kills(server: UnleashServer, key: str, token: str) -> None:
    print(f"kill propagation, from the disable call being sent to each client serving off ({CLIENTS} clients a side)")
    ours: dict[str, Delays] = {}
    for name, admin_url, stream_url in _paths():
        ours[name] = await safeguard_kills(admin_url=admin_url, stream_url=stream_url, token=token, key=key,
                                           kills=KILLS, clients=CLIENTS)
        print(f"  safeguard SDK (SSE), {name:<34} {ours[name].line()}")
    peers: dict[int, Delays] = {}
    for refresh_s, n in ((1, KILLS_1S), (15, KILLS_15S)):
        peers[refresh_s] = await unleash_kills(server=server, key=key, refresh_s=refresh_s, kills=n, clients=CLIENTS)
        print(f"  UnleashClient (polling), {refresh_s:>2} s refresh{'':<21} {peers[refresh_s].line()}")
    for refresh_s, peer in peers.items():
        what = f"UnleashClient polling {PEER}, {refresh_s} s refresh" + (" (its default)" if refresh_s == 15 else "")
        for name, o in ours.items():
            print(f"  {name}: p50 x{o.p50 / peer.p50:.4f}, p99 x{o.p99 / peer.p99:.4f} of {what}")
            record(f"kill seen by the SDK from the call sent, {name}, p99", o.p99, "ms", baseline=f"{what}, p99",
                   baseline_value=peer.p99, lower_is_better=True,
                   note=f"p50 {o.p50:.1f} vs {peer.p50:.1f} ms; {len(o.ms)} vs {len(peer.ms)} samples")


async def main() -> None:
    token = _admin_token()
    key = f"bench-unleash-{uuid.uuid4().hex[:8]}"
    async with unleash_server() as server:
        await server.create_flag(key=key, ends_with="@example.com")
        await server.frontend_sees(key=key, query="userId=user-1&email=user-1%40example.com")
        await _create(FRONT, token, key)
        try:
            await evaluation(server, key)
            await kills(server, key, token)
        finally:
            await _delete(FRONT, token, key)


if __name__ == "__main__":
    asyncio.run(main())
