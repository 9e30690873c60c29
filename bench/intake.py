"""Intake benchmark: OTLP/HTTP metrics throughput (requests/s and data points/s, protobuf and JSON) beside a
bare ASGI endpoint on the same uvicorn server, in the same run.

The server runs in a child process (uvicorn, one worker, loopback, a free port) with the intake app and
`/bare`, an ASGI endpoint that reads the body and answers 200: the baseline of HTTP + server cost.
Kafka is replaced by a publisher that counts (this measures the intake; a real broker adds its ack time).
Each client task is one app instance sending cumulative exports whose counts grow, so every request
runs the cumulative -> delta path. Bounded: REQUESTS per case, CONCURRENCY tasks, loopback only.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import statistics
import time
from typing import Any

import httpx
from google.protobuf import json_format

from bench.report import record
from tests.unit.intake.build import duration, export, gauge, hist_point

CONCURRENCY = 8
ROUNDS = 3
CASES = {"small": (20, 800), "large": (200, 240)}  # histogram series per export (+ 1 memory point), requests


class _CountingPublisher:
    def __init__(self) -> None:
        self.count = 0

    async def publish(self, event: Any, *, topic: str | None = None) -> None:
        self.count += 1


def _serve(port: int) -> None:
    import uvicorn

    from services.intake.app import create_app
    from services.intake.settings import IntakeSettings
    from shared.ratelimit import RateLimiter

    intake = create_app(IntakeSettings(), publisher=_CountingPublisher(), limiter=RateLimiter(storage=None))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bare":
            more = True
            while more:
                more = (await receive()).get("more_body", False)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await intake(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bodies(*, instance: str, series: int, n: int, as_json: bool) -> list[bytes]:
    out = []
    for i in range(1, n + 1):
        points = [hist_point(buckets=[i, i // 2, i // 5] + [0] * 11 + [i // 50], status=200 if s % 10 else 500,
                             time_s=float(i), total=0.01 * i, **{"http.route": f"/r{s}"}) for s in range(series)]
        request = export(duration(*points), gauge("process.memory.usage", 1e8 + i), instance=instance)
        out.append(json_format.MessageToJson(request).encode() if as_json else request.SerializeToString())
    return out


async def _drive(base: str, path: str, ctype: str, bodies: list[list[bytes]]) -> float:
    """Send every body (one list per concurrent task, in order); seconds taken."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def task(mine: list[bytes]) -> None:
            for body in mine:
                r = await client.post(path, content=body, headers={"content-type": ctype})
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {r.status_code} {r.content[:200]!r}")

        start = time.perf_counter()
        await asyncio.gather(*(task(b) for b in bodies))
        return time.perf_counter() - start


async def _wait_up(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=1) as client:
        for _ in range(100):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the bench server did not start")


async def main() -> None:
    port = _free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_up(base)
        print(f"{CONCURRENCY} concurrent clients, median of {ROUNDS} rounds; uvicorn in a child process, "
              f"Kafka replaced by a counting publisher")
        for label, (series, requests) in CASES.items():
            for as_json in (False, True):
                await _case(base, label=label, series=series, as_json=as_json, per_task=requests // CONCURRENCY)
    finally:
        server.terminate()
        server.join(10)


async def _case(base: str, *, label: str, series: int, as_json: bool, per_task: int) -> None:
    ctype = "application/json" if as_json else "application/x-protobuf"
    bare_s, intake_s = [], []
    for r in range(ROUNDS):
        bodies = [_bodies(instance=f"{label}-{as_json}-{r}-{t}", series=series, n=per_task, as_json=as_json)
                  for t in range(CONCURRENCY)]
        bare_s.append(await _drive(base, "/bare", ctype, bodies))
        intake_s.append(await _drive(base, "/v1/metrics", ctype, bodies))
    n = per_task * CONCURRENCY
    bare, taken = statistics.median(bare_s), statistics.median(intake_s)
    size = statistics.mean(len(b) for b in bodies[0])
    points = series + 1
    print(f"{'JSON' if as_json else 'protobuf':8} {label:5} ({points:3} points, {size / 1024:6.1f} KiB, {n} requests): "
          f"intake {n / taken:5.0f} req/s = {n * points / taken:6.0f} points/s; bare endpoint {n / bare:5.0f} req/s; "
          f"ratio intake/bare {taken / bare:.1f}x the time per request")
    record(f"{'JSON' if as_json else 'protobuf'} {label} ({points} points): intake, median of {ROUNDS}", n / taken,
           "req/s", baseline="bare ASGI endpoint, same server", baseline_value=n / bare,
           spread=(n / max(intake_s), n / min(intake_s)), note=f"{n * points / taken:,.0f} points/s")


if __name__ == "__main__":
    asyncio.run(main())
