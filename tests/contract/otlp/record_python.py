"""Records OTLP/HTTP metrics exports of the Python OpenTelemetry SDK into this folder (python-sdk-<n>.binpb).

    .venv/bin/python -m tests.contract.otlp.record_python

The app is a Starlette app under `opentelemetry-instrumentation-asgi` (stable HTTP conventions:
`http.server.request.duration` in seconds) serving 5 x 200, 2 x 404, 3 x 500; a `process.memory.usage`
observable gauge (psutil RSS) and `process.memory.limit` as an app that knows its cgroup limit
would send them. The exporter is `opentelemetry-exporter-otlp-proto-http`, its receiver a stdlib
HTTP server on a free loopback port. Two exports: after the requests, and after 1 x 500 more.
"""

from __future__ import annotations

import asyncio
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OUT = Path(__file__).resolve().parent
LIMIT_BYTES = 512 * 1024 * 1024


def _receiver(captured: list[bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            captured.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def _traffic(app: object, statuses: list[int]) -> None:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop") as client:  # type: ignore[arg-type]
        for status in statuses:
            await client.get(f"/{status}")


def main(out: Path = OUT) -> None:
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"
    import psutil
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    captured: list[bytes] = []
    server = _receiver(captured)
    exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{server.server_port}/v1/metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": "shop-python", "service.instance.id": "shop-python-1",
                                "process.pid": os.getpid()})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("recorder")

    def rss(_: CallbackOptions) -> list[Observation]:
        return [Observation(psutil.Process().memory_info().rss)]

    meter.create_observable_up_down_counter("process.memory.usage", [rss], unit="By")
    meter.create_observable_gauge("process.memory.limit", [lambda _: [Observation(LIMIT_BYTES)]], unit="By")

    async def answer(request: object) -> PlainTextResponse:
        status = int(request.path_params["status"])  # type: ignore[attr-defined]
        return PlainTextResponse("x", status_code=status)

    app = OpenTelemetryMiddleware(Starlette(routes=[Route("/{status:int}", answer)]), meter_provider=provider)
    asyncio.run(_traffic(app, [200] * 5 + [404] * 2 + [500] * 3))
    reader.force_flush()
    asyncio.run(_traffic(app, [500]))
    provider.shutdown()
    server.shutdown()
    if len(captured) != 2:
        raise SystemExit(f"expected 2 exports, the receiver got {len(captured)}")
    for i, body in enumerate(captured, 1):
        (out / f"python-sdk-{i}.binpb").write_bytes(body)
    print(f"recorded {len(captured)} exports to {out}")


if __name__ == "__main__":
    main()
