"""What the incident trace costs a protected app per request (`RequestsMiddleware`, raw ASGI, no HTTP client).

Baseline: tracing not set up (no tracer provider: the middleware only counts). Then, with a tracer provider
(spans recorded, exported nowhere): (1) the request already has a span (FastAPI's own: the demo's case), the
middleware only keeps the window's exemplar and links; (2) no span yet: the middleware starts one
(OpenTelemetry's ASGI middleware); and publishing one window (its `requests window` span).

Setting a tracer provider cannot be undone in a process, so the figures are measured in a child process.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from opentelemetry import trace
from starlette.types import Receive, Scope, Send

from bench.report import record
from sdk.middleware import RequestRecorder, RequestsMiddleware
from shared.testing import InMemoryPublisher

REQUESTS = 20_000
WINDOWS = 2_000


_ROWS = "#rows "


async def bare_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"no"})


async def per_request(app: Any, *, in_span: bool, rounds: int = 5) -> float:
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b"", "server": ("b", 80)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_m: Any) -> None:
        return None

    tracer = trace.get_tracer("bench")
    runs = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(REQUESTS):
            if in_span:
                with tracer.start_as_current_span("GET /x"):
                    await app(scope, receive, send)
            else:
                await app(scope, receive, send)
        runs.append((time.perf_counter() - start) / REQUESTS)
    return statistics.median(runs)


async def per_window(recorder: RequestRecorder) -> float:
    pub = InMemoryPublisher()
    start = time.perf_counter()
    for _ in range(WINDOWS):
        for _ in range(20):
            recorder.record(500, 3.0, span=trace.get_current_span().get_span_context())
        await recorder.publish_window(pub)
    return (time.perf_counter() - start) / WINDOWS


async def child() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    app = RequestsMiddleware(bare_asgi, recorder=RequestRecorder(service="bench", instance="b"))
    base = await per_request(app, in_span=False)
    base_window = await per_window(RequestRecorder(service="bench", instance="b"))
    trace.set_tracer_provider(TracerProvider())
    pairs = [(await per_request(app, in_span=True, rounds=1), await per_request(bare_asgi, in_span=True, rounds=1))
             for _ in range(7)]  # interleaved: the span's own cost drifts as the process warms up
    own = statistics.median(a - b for a, b in pairs)
    started = await per_request(app, in_span=False)
    window = await per_window(RequestRecorder(service="bench", instance="b"))
    print(f"not traced (baseline): {base * 1e6:.2f} us/req")
    print(f"request already in a span: the middleware {own * 1e6:.2f} us/req (ratio {own / base:.2f}x to the baseline)")
    print(f"no span yet, the middleware starts one: {started * 1e6:.2f} us/req (ratio {started / base:.2f}x)")
    print(f"publishing a window (20 failing requests, 16 links): traced {window * 1e6:.1f} us, "
          f"not traced {base_window * 1e6:.1f} us (ratio {window / base_window:.2f}x), once a second per instance")
    rows = [("request already in a span: the middleware's own part", own * 1e6, "µs/req", "not traced", base * 1e6),
            ("no span yet: the middleware starts one", started * 1e6, "µs/req", "not traced", base * 1e6),
            ("publishing a window, traced", window * 1e6, "µs", "not traced", base_window * 1e6)]
    print(_ROWS + json.dumps(rows))  # the parent records them (tracing is set up in this child only)


async def main() -> None:
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bench.request_trace"], check=True,
                                  capture_output=True, text=True, timeout=300)
    for line in out.stdout.splitlines(keepends=True):
        if line.startswith(_ROWS):
            for name, value, unit, baseline, base in json.loads(line[len(_ROWS):]):
                record(name, value, unit, baseline=baseline, baseline_value=base, lower_is_better=True)
        else:
            print(line, end="")


if __name__ == "__main__":
    asyncio.run(child())
