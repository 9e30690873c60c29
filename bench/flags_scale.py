"""Horizontal flags (issue 12): two instances behind HAProxy, and the SSE fan-out at 10,000 idle streams.

Two private flags instances (own ports, one private schema and Redis key prefix, sync gRPC on any free
port) and two private HAProxies on loopback: one routes to instance A only (the baseline), the other
balances A and B (leastconn, as stack/haproxy.cfg.in). Measured in one run:

1. OFREP single evaluation through HAProxy, one instance vs two (wrk -t2 -c16 when present, else a
   Python keep-alive client): req/s, p99, the ratio two/one.
2. SSE_STREAMS (10,000) idle SSE streams on instance A: its RSS before and after, per stream, against
   the budget SSE_BUDGET_MB (200 MB per 10,000, the aim; 16.3 KB a stream since the stream moved to the edge).
   Only this private instance raises its stream caps (FLAGS_SSE_MAX_SUBSCRIBERS / _PER_CLIENT); the
   stack keeps its defaults (1,024 streams per instance).
3. Kills made through A, seen by the subscribers of A and of B (B learns over Redis pub/sub): the
   slowest subscriber's delay per kill (p50, p99), first with 10 streams per instance (the baseline),
   then with SSE_STREAMS on A and SSE_STREAMS_B on B. The bench's own client shares the machine's
   cores with both instances, so these delays include reading every stream in one Python process.

    python -m bench flags_scale        # SCALE_SECONDS=5 SSE_STREAMS=10000 SSE_STREAMS_B=1000 SCALE_KILLS=20
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from bench.flags import _wait
from bench.report import record

__all__ = ["main"]

SECONDS = float(os.environ.get("SCALE_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("SCALE_CONNECTIONS", "16"))
STREAMS = int(os.environ.get("SSE_STREAMS", "10000"))
STREAMS_B = int(os.environ.get("SSE_STREAMS_B", "1000"))
KILLS = int(os.environ.get("SCALE_KILLS", "20"))
BUDGET_MB = float(os.environ.get("SSE_BUDGET_MB", "200"))  # measured 159 MB (16.3 KB a stream) on 2026-12-01
TOKEN = "bench-scale-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FLAG = {"key": "scaled", "new": False, "state": "ENABLED", "variants": {"on": True, "off": False},
        "defaultVariant": "on", "offVariant": "off",
        "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}}
BODY = json.dumps({"context": {"targetingKey": "user-1", "email": "user-1@example.com"}})
PATH = "/ofrep/v1/evaluate/flags/scaled"
HAPROXY = """global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
frontend front
    bind 127.0.0.1:{port}
    default_backend flags
backend flags
    balance leastconn
    retries 3
    option redispatch 1
    option http-buffer-request
    timeout connect 200ms
    retry-on conn-failure empty-response
{servers}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@asynccontextmanager
async def _instances() -> AsyncIterator[tuple[list[int], list[subprocess.Popen[bytes]]]]:
    """Instances A and B of one private flags service (one schema, one Redis prefix)."""
    ports = [_free_port(), _free_port()]
    schema, prefix = f"flags_scale{ports[0]}", f"scale{ports[0]}:flags:"
    tmp = Path(tempfile.mkdtemp(prefix="flags-scale-"))
    base = {"FLAGS_DB_SCHEMA": schema, "FLAGS_CACHE_PREFIX": prefix, "FLAGS_SYNC_PORT": "0",
            "KAFKA_TOPIC_PREFIX": "bench.", "SAFEGUARD_ENV": "local", "SAFEGUARD_ADMIN_TOKEN": TOKEN,
            "FLAGS_SEED": "false", "FLAGS_RATE_LIMIT": "1000000/second", "FLAGS_WRITE_LIMIT": "1000000/second",
            "FLAGS_SSE_MAX_SUBSCRIBERS": str(STREAMS + STREAMS_B + 100),
            "FLAGS_SSE_MAX_PER_CLIENT": str(STREAMS + STREAMS_B + 100), "LOG_LEVEL": "WARNING"}
    procs = []
    try:
        for i, port in enumerate(ports):
            env = {**os.environ, **base, "FLAGS_PORT": str(port), "FLAGS_JOURNAL_PATH": str(tmp / f"j{i}.jsonl")}
            procs.append(subprocess.Popen([sys.executable, "-m", "services.flags"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            await _wait(f"http://127.0.0.1:{port}/readyz", procs[-1])
        yield ports, procs
    finally:
        for p in procs:
            _stop(p)
        await _cleanup(schema, prefix)


async def _cleanup(schema: str, prefix: str) -> None:
    import asyncpg
    import redis.asyncio as aioredis
    conn = await asyncpg.connect(os.environ.get("POSTGRES_DSN", "postgresql://safeguard@127.0.0.1:5432/safeguard"))
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()
    r = aioredis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    await r.delete(prefix + "defs", prefix + "revision", prefix + "pending-off")
    await r.aclose()


@asynccontextmanager
async def _haproxy(backends: list[int]) -> AsyncIterator[int]:
    port = _free_port()
    servers = "\n".join(f"    server s{i} 127.0.0.1:{p} check inter 1s" for i, p in enumerate(backends))
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(HAPROXY.format(port=port, servers=servers))
    proc = subprocess.Popen(["haproxy", "-db", "-f", f.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield port
    finally:
        _stop(proc)
        os.unlink(f.name)


# ------------------------------------------------------------------ 1. OFREP, one vs two instances
def _wrk(port: int) -> tuple[float, float, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{BODY}]]\n')
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS:.0f}s", "--latency", "-s", f.name,
                              f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)$", out, re.M)
    assert p99 is not None, out
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rps, p99_ms, int(non.group(1)) if non else 0


async def _python_load(port: int) -> tuple[float, float, int]:
    lat: list[float] = []
    errors = 0
    stop = time.monotonic() + SECONDS

    async def worker(c: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < stop:
            t = time.perf_counter()
            r = await c.post(PATH, content=BODY, headers={"Content-Type": "application/json"})
            lat.append((time.perf_counter() - t) * 1000)
            errors += r.status_code != 200

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=httpx.Limits(max_connections=64)) as c:
        t0 = time.monotonic()
        await asyncio.gather(*(worker(c) for _ in range(CONNECTIONS)))
        took = time.monotonic() - t0
    return len(lat) / took, statistics.quantiles(lat, n=100)[98], errors


async def _ofrep(port: int) -> tuple[float, float, int]:
    if shutil.which("wrk"):
        return await asyncio.to_thread(_wrk, port)
    return await _python_load(port)


# ------------------------------------------------------------------ 2-3. SSE streams and kills
class Streams:
    """Idle SSE streams held with bare sockets (cheap: 10,000 in one process); records when each sees a
    `flag` event for `scaled` at a revision."""

    def __init__(self) -> None:
        self.seen: dict[int, list[float]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self, port: int, n: int, *, batch: int = 200) -> None:
        for start in range(0, n, batch):
            ready = [asyncio.get_running_loop().create_future() for _ in range(min(batch, n - start))]
            self.tasks += [asyncio.create_task(self._one(port, f)) for f in ready]
            await asyncio.gather(*ready)

    async def _one(self, port: int, ready: asyncio.Future[None]) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
            self.writers.append(writer)
            writer.write(f"GET /api/flags/_stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Accept: text/event-stream\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
            await reader.readuntil(b"\n\n")  # the snapshot event (chunked framing lines around it)
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        while True:
            chunk = await reader.readuntil(b"\n\n")
            now = time.perf_counter()
            m = re.search(rb"event: flag\nid: (\d+)\ndata: (.*)", chunk)
            if m and b'"key":"scaled"' in m.group(2):
                self.seen.setdefault(int(m.group(1)), []).append(now)

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for w in self.writers:
            w.close()
        self.tasks, self.writers, self.seen = [], [], {}


async def _kills(a: int, streams: Streams, total: int, kills: int) -> tuple[list[float], int]:
    """`kills` kills (each after an enable) through instance A; per kill, the slowest subscriber's delay (ms)
    from the call being sent. Returns the delays and how many kills some subscriber never saw within 10 s."""
    slowest: list[float] = []
    missed = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{a}", headers=AUTH, timeout=30) as c:
        for _ in range(kills):
            (await c.post("/api/flags/scaled/enable", json={"reason": "bench"})).raise_for_status()
            await asyncio.sleep(0.3)
            before = max(streams.seen, default=0)
            t0 = time.perf_counter()
            (await c.post("/api/flags/scaled/kill", json={"reason": "bench"})).raise_for_status()
            deadline = time.monotonic() + 10
            got: list[float] = []
            while time.monotonic() < deadline:
                got = streams.seen.get(max(streams.seen, default=0), []) if max(streams.seen, default=0) > before else []
                if len(got) >= total:
                    break
                await asyncio.sleep(0.01)
            else:
                missed += 1
                continue
            slowest.append((max(got[:total]) - t0) * 1000)
            await asyncio.sleep(0.2)
    return slowest, missed


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else float("nan"))


async def _kill_round(ports: list[int], per_a: int, per_b: int) -> tuple[list[float], int]:
    streams = Streams()
    try:
        await streams.open(ports[0], per_a)
        await streams.open(ports[1], per_b)
        return await _kills(ports[0], streams, per_a + per_b, KILLS)
    finally:
        await streams.close()


async def main() -> None:
    loader = f"wrk -t2 -c{CONNECTIONS}" if shutil.which("wrk") else f"a Python client, {CONNECTIONS} connections"
    print(f"horizontal flags: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, loopback")
    async with _instances() as (ports, procs):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", headers=AUTH) as c:
            (await c.post("/api/flags", json={**FLAG, "reason": "bench"})).raise_for_status()
        await asyncio.sleep(0.5)
        async with _haproxy(ports[:1]) as one, _haproxy(ports) as two:
            rps1, p99_1, bad1 = await _ofrep(one)
            rps2, p99_2, bad2 = await _ofrep(two)
        print(f"OFREP single through HAProxy, {loader}, {SECONDS:.0f} s each")
        print(f"  one instance  {rps1:>8,.0f} req/s  p99 {p99_1:6.2f} ms  non-2xx {bad1}")
        print(f"  two instances {rps2:>8,.0f} req/s  p99 {p99_2:6.2f} ms  non-2xx {bad2}")
        print(f"  ratio two/one x{rps2 / rps1:.2f} (the load generator and HAProxy share the same {os.cpu_count()} cores)")
        record("OFREP single through HAProxy, two instances", rps2, "req/s", baseline="one instance, same HAProxy",
               baseline_value=rps1, note=f"p99 {p99_2:.2f} vs {p99_1:.2f} ms; {loader}; load generator on the same cores")

        base_kill, base_missed = await _kill_round(ports, 10, 10)
        rss0 = _rss_mb(procs[0].pid)
        streams = Streams()
        t0 = time.monotonic()
        await streams.open(ports[0], STREAMS)
        opened = time.monotonic() - t0
        await asyncio.sleep(2)
        rss1 = _rss_mb(procs[0].pid)
        await streams.open(ports[1], STREAMS_B)
        per = (rss1 - rss0) * 1024 / STREAMS
        verdict = "within" if rss1 - rss0 <= BUDGET_MB * STREAMS / 10_000 else "OVER"
        print(f"SSE: {STREAMS:,} idle streams on one instance (opened in {opened:.1f} s)")
        print(f"  RSS {rss0:.0f} MB -> {rss1:.0f} MB: +{rss1 - rss0:.0f} MB, {per:.1f} KB per stream; "
              f"budget {BUDGET_MB:.0f} MB per 10,000: {verdict}")
        record(f"SSE: {STREAMS:,} idle streams on one instance, RSS growth", rss1 - rss0, "MB",
               baseline=f"budget per {STREAMS:,} streams", baseline_value=BUDGET_MB * STREAMS / 10_000,
               lower_is_better=True, limit=BUDGET_MB * STREAMS / 10_000, note=f"{per:.1f} KB per stream")
        try:
            full_kill, full_missed = await _kills(ports[0], streams, STREAMS + STREAMS_B, KILLS)
        finally:
            await streams.close()
        print(f"kill through A -> slowest subscriber of A and B (B over Redis pub/sub), {KILLS} kills, "
              "from the call being sent")
        print(f"  10 + 10 streams (baseline)   p50 {_pct(base_kill, 50):7.1f} ms  p99 {_pct(base_kill, 99):7.1f} ms"
              f"  missed {base_missed}")
        print(f"  {STREAMS:,} + {STREAMS_B:,} streams  p50 {_pct(full_kill, 50):7.1f} ms  "
              f"p99 {_pct(full_kill, 99):7.1f} ms  missed {full_missed}  "
              f"(x{_pct(full_kill, 99) / _pct(base_kill, 99):.0f} of the baseline's p99)")
        record(f"kill through A -> slowest of {STREAMS:,} + {STREAMS_B:,} streams (B over Redis), p99",
               _pct(full_kill, 99), "ms", baseline="10 + 10 streams, p99", baseline_value=_pct(base_kill, 99),
               lower_is_better=True, note=f"p50 {_pct(full_kill, 50):.1f} vs {_pct(base_kill, 50):.1f} ms; "
               f"missed {full_missed}; one Python reader process for all streams")


if __name__ == "__main__":
    asyncio.run(main())
