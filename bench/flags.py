"""Flag benchmarks, each against a baseline measured in the same run:

1. Local evaluation per second (static, targeting, 10 % fractional) for our SDK client, openfeature-flagd-core
   and UnleashClient (both from PyPI) on equivalent flags.
2. Kill propagation: from the kill call returning to our SDK client serving the new value (over SSE), p50/p99
   over 100 kills, against the flags service running in its own process on loopback.
3. OFREP single evaluation over HTTP at a fixed concurrency: requests/s and p99, as a ratio to a bare uvicorn
   endpoint answering the same JSON (both in their own process, same load generator).

Needs Postgres and Redis (`make up`); uses its own schema / key prefix / topic prefix and drops them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx


from bench.report import record
from sdk.flags import FlagClient

N_EVAL = 50_000
REPEATS = 3
KILLS = 200  # kill, enable, kill, ...: 100 kills measured
CONCURRENCY = 16
HTTP_SECONDS = 4.0
TOKEN = "bench-admin-token"
USERS = [{"targetingKey": f"user-{i}", "email": f"user-{i}@{'example.com' if i % 3 else 'other.org'}"}
         for i in range(1000)]

FLAGD = {
    "static": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"},
    "targeted": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
                 "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}},
    "rollout10": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
                  "targeting": {"fractional": [["on", 10], ["off", 90]]}},
}
UNLEASH = {"version": 1, "features": [
    {"name": "static", "enabled": True, "strategies": [{"name": "default", "parameters": {}}]},
    {"name": "targeted", "enabled": True, "strategies": [{"name": "default", "parameters": {}, "constraints": [
        {"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"]}]}]},
    {"name": "rollout10", "enabled": True, "strategies": [{"name": "flexibleRollout", "parameters": {
        "rollout": "10", "stickiness": "userId", "groupId": "rollout10"}}]},
]}


def _rate(fn: Callable[[dict[str, Any]], Any]) -> float:
    users = USERS
    n = len(users)
    t0 = time.perf_counter()
    for i in range(N_EVAL):
        fn(users[i % n])
    return N_EVAL / (time.perf_counter() - t0)


def local_evaluation() -> None:
    ours = FlagClient("http://127.0.0.1:9")
    ours._handle("snapshot", {"revision": 1, "flags": {  # the same path an SSE snapshot takes
        k: {"key": k, "version": 1, "definition": d, "offVariant": None} for k, d in FLAGD.items()}})

    from openfeature.contrib.tools.flagd.core import FlagdCore
    from openfeature.evaluation_context import EvaluationContext
    core = FlagdCore()
    core.set_flags({"flags": FLAGD})
    contexts = {u["targetingKey"]: EvaluationContext(u["targetingKey"], {"email": u["email"]}) for u in USERS}

    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache
    cache = FileCache("bench", directory=tempfile.mkdtemp(prefix="unleash-bench-"))
    cache.bootstrap_from_dict(UNLEASH)
    unleash = UnleashClient("http://127.0.0.1:9/api", "bench", disable_metrics=True, disable_registration=True,
                            cache=cache)
    unleash.initialize_client(fetch_toggles=False)
    ucontexts = {u["targetingKey"]: {"userId": u["targetingKey"], "properties": {"email": u["email"]}}
                 for u in USERS}

    agree = sum(ours.get_boolean("rollout10", False, u) == core.resolve_boolean_value(
        "rollout10", False, contexts[u["targetingKey"]]).value for u in USERS)
    print(f"local evaluation, {N_EVAL} calls each (evaluations/s; ratio = ours / other)")
    print(f"  rollout10 answers identical to flagd-core for {agree}/{len(USERS)} users")
    for key in FLAGD:
        runs = []  # REPEATS rounds, the three interleaved so load from elsewhere hits them alike
        for _ in range(REPEATS):
            runs.append((_rate(lambda u, k=key: ours.get_boolean(k, False, u)),
                         _rate(lambda u, k=key: core.resolve_boolean_value(k, False, contexts[u["targetingKey"]])),
                         _rate(lambda u, k=key: unleash.is_enabled(k, ucontexts[u["targetingKey"]]))))
        r_ours, r_core, r_unl = (statistics.median(col) for col in zip(*runs))
        print(f"  {key:10s} safeguard {r_ours:>11,.0f}/s   flagd-core {r_core:>9,.0f}/s (x{r_ours / r_core:5.1f})"
              f"   UnleashClient {r_unl:>9,.0f}/s (x{r_ours / r_unl:5.1f})"
              f"   (median of {REPEATS}; safeguard {min(r[0] for r in runs):,.0f}-{max(r[0] for r in runs):,.0f})")
        spread = (min(r[0] for r in runs), max(r[0] for r in runs))
        record(f"SDK local eval, {key}", r_ours, "evals/s", baseline="flagd-core (Python)", baseline_value=r_core,
               target=2.0, spread=spread)
        record(f"SDK local eval, {key}", r_ours, "evals/s", baseline="UnleashClient", baseline_value=r_unl,
               spread=spread)
    unleash.destroy()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


async def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited (is the stack up? make up)")
            try:
                if (await c.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def kill_propagation(base: str) -> None:
    seen: dict[bool, asyncio.Event] = {True: asyncio.Event(), False: asyncio.Event()}
    stamp: dict[bool, float] = {}
    async with FlagClient(base) as client, httpx.AsyncClient(base_url=base, headers={
            "Authorization": f"Bearer {TOKEN}"}) as admin:
        def changed(key: str, flag: Any) -> None:
            if key == "gamification" and flag is not None:
                value = client.get_boolean("gamification", not flag.enabled)
                stamp[value] = time.perf_counter()
                seen[value].set()
        client.on_change(changed)
        await admin.post("/api/flags/gamification/enable")
        await asyncio.wait_for(seen[True].wait(), 5)
        delays, from_sent = [], []
        for i in range(KILLS):
            off = i % 2 == 0  # kill, enable, kill, ...: each kill measured, enables only reset
            want = not off
            seen[want].clear()
            path = "/api/flags/gamification/kill" if off else "/api/flags/gamification/enable"
            sent = time.perf_counter()
            r = await admin.post(path)
            returned = time.perf_counter()
            r.raise_for_status()
            await asyncio.wait_for(seen[want].wait(), 5)
            if off:
                delays.append(max(0.0, stamp[want] - returned) * 1000)
                from_sent.append((stamp[want] - sent) * 1000)
        ahead = sum(1 for d in delays if d == 0.0)
        q, qs = statistics.quantiles(delays, n=100), statistics.quantiles(from_sent, n=100)
        print(f"kill propagation over SSE, {len(delays)} kills (Unleash default: next poll, up to 15 000 ms):")
        print(f"  from the kill call returning to the SDK serving off: p50 {statistics.median(delays):.2f} ms"
              f"  p99 {q[98]:.2f} ms  ({ahead} of {len(delays)} were already served before the call returned)")
        print(f"  from the kill call being sent (includes the Postgres commit): p50 {statistics.median(from_sent):.2f}"
              f" ms  p99 {qs[98]:.2f} ms  max {max(from_sent):.2f} ms")
        record("kill seen by the SDK from the call sent, p99", qs[98], "ms",
               baseline="Unleash default poll (15 s, documented, not run)", baseline_value=15_000, lower_is_better=True,
               note=f"p50 {statistics.median(from_sent):.2f} ms")


async def _load(port: int, path: str, body: bytes) -> tuple[float, float, int]:
    """Keep-alive HTTP/1.1 POSTs from CONCURRENCY connections for HTTP_SECONDS: (req/s, p99 ms, errors)."""
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + HTTP_SECONDS

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(
                    b"content-length"))
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, statistics.quantiles(latencies, n=100)[98] * 1000, errors


BARE = """
import json, uvicorn
BODY = json.dumps({"key": "gamification", "reason": "STATIC", "variant": "on", "value": True}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="error", access_log=False)
"""


async def ofrep_throughput(flags_port: int) -> None:
    bare_port = _free_port()
    bare = _spawn(["-c", BARE, str(bare_port)], {})
    try:
        await _wait(f"http://127.0.0.1:{bare_port}/", bare)
        body = json.dumps({"context": {"targetingKey": "user-1", "email": "a@example.com"}}).encode()
        path = "/ofrep/v1/evaluate/flags/gamification"
        b_rps, b_p99, _ = await _load(bare_port, path, body)
        o_rps, o_p99, errors = await _load(flags_port, path, body)
        print(f"OFREP single evaluation over HTTP, {CONCURRENCY} connections x {HTTP_SECONDS:.0f} s on loopback"
              f" (rate limiter on, Redis-backed):")
        print(f"  safeguard {o_rps:,.0f} req/s, p99 {o_p99:.2f} ms, non-200 {errors}")
        print(f"  bare uvicorn {b_rps:,.0f} req/s, p99 {b_p99:.2f} ms")
        print(f"  ratio: throughput x{o_rps / b_rps:.2f} of bare, p99 x{o_p99 / b_p99:.2f} of bare")
        record("OFREP single (Python client)", o_rps, "req/s", baseline="bare uvicorn ASGI", baseline_value=b_rps,
               target=0.5)
    finally:
        bare.terminate()
        bare.wait(10)


async def _cleanup(schema: str, prefix: str) -> None:
    import asyncpg
    import redis.asyncio as aioredis
    conn = await asyncpg.connect(os.environ.get("POSTGRES_DSN",
                                                "postgresql://safeguard@127.0.0.1:5432/safeguard"))
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()
    r = aioredis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    await r.delete(prefix + "defs", prefix + "revision")
    await r.aclose()


@asynccontextmanager
async def flags_service(name: str, **extra_env: str) -> AsyncIterator[tuple[str, int]]:
    """A private flags service (own port, schema, cache prefix, unlimited rates) for one bench; yields its
    base URL and port, and stops it and drops its data at the end."""
    port = _free_port()
    schema, prefix = f"flags_{name}{port}", f"{name}{port}:flags:"
    journal = Path(tempfile.mkdtemp(prefix=f"bench-{name}-")) / "pending-off.jsonl"
    env = {"FLAGS_PORT": str(port), "FLAGS_DB_SCHEMA": schema, "FLAGS_CACHE_PREFIX": prefix,
           "KAFKA_TOPIC_PREFIX": "bench.", "SAFEGUARD_ENV": "local", "SAFEGUARD_ADMIN_TOKEN": TOKEN,
           "FLAGS_SEED": "true", "FLAGS_RATE_LIMIT": "1000000/second", "FLAGS_WRITE_LIMIT": "1000000/second",
           "LOG_LEVEL": "WARNING", "FLAGS_SYNC_PORT": "0", **extra_env}
    # not the stack's own instance settings (make bench loads .stack/env): its flags' sync port (the service
    # would fail to listen there and serve no flagd sync) and its kill journal (read and resolved at start)
    env |= {"FLAGS_SYNC_PORT_1": env["FLAGS_SYNC_PORT"], "FLAGS_JOURNAL_PATH": str(journal)}
    service = _spawn(["-m", "services.flags"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait(base + "/readyz", service)
        yield base, port
    finally:
        service.terminate()
        try:
            service.wait(15)
        except subprocess.TimeoutExpired:
            service.kill()
        await _cleanup(schema, prefix)
        shutil.rmtree(journal.parent, ignore_errors=True)


async def main() -> None:
    local_evaluation()
    async with flags_service("bench") as (base, port):
        await kill_propagation(base)
        await ofrep_throughput(port)

if __name__ == "__main__":
    asyncio.run(main())
