"""The trace view in a real browser (Debian's Chromium through Playwright) on the running native stack:
an OFREP request through :3000 carrying a trace id of ours, then that trace opened in Zipkin's Lens UI
(http://127.0.0.1:9411/zipkin/traces/<id>) showing the flags service's spans. docs/tracing.md.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import chromium_page
from tests.e2e.test_runbook_loop import FRONT

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ZIPKIN = f"http://127.0.0.1:{os.environ.get('ZIPKIN_PORT', '9411')}"
FLAGS_SERVICE = "safeguard-flags"
SCREENSHOT = ROOT / "docs" / "trace-view.png"
ARTEFACTS = Path(os.environ.get("SAFEGUARD_TEST_ARTEFACTS", ROOT / ".stack" / "artefacts"))


async def _spans_of(http: httpx.AsyncClient, trace_id: str, *, wait_s: float,
                    service: str = FLAGS_SERVICE) -> list[dict[str, Any]]:
    """The trace's spans from Zipkin's API once the service's are in. Exports are batched (up to 5 s)
    and Zipkin starts in the background at the end of `make up`: poll, never sleep a fixed time."""
    deadline, last = time.monotonic() + wait_s, "no answer"
    while time.monotonic() < deadline:
        try:
            r = await http.get(f"{ZIPKIN}/api/v2/trace/{trace_id}")
            last = f"{r.status_code} {r.text[:200]}"
            if r.status_code == 200 and any(s["localEndpoint"]["serviceName"] == service for s in r.json()):
                return list(r.json())
        except httpx.TransportError as e:
            last = repr(e)
        await asyncio.sleep(0.5)
    raise AssertionError(f"no span of {service} in Zipkin's trace {trace_id} after {wait_s:g} s: {last}")


async def test_an_ofrep_request_s_trace_opens_in_zipkin_lens_with_the_flags_spans() -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{FRONT}/ofrep/v1/evaluate/flags/gamification", json={"context": {"targetingKey": "e2e"}},
                            headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        assert r.status_code == 200, r.text
        spans = await _spans_of(http, trace_id, wait_s=90)
    flags = [s for s in spans if s["localEndpoint"]["serviceName"] == FLAGS_SERVICE]
    assert {s.get("parentId") for s in flags} & {parent_id}, f"no flags span under our parent {parent_id}: {flags}"
    names = {s["name"] for s in flags}

    async with chromium_page(height=720) as page:
        shown = await page.goto(f"{ZIPKIN}/zipkin/traces/{trace_id}")
        assert shown is not None and shown.status == 200
        # Lens renders client-side from /api/v2/trace/<id>: wait for the spans, not for a time
        await page.get_by_text(FLAGS_SERVICE).first.wait_for(state="visible", timeout=20_000)
        for name in names:  # the timeline's rows read "<service>: <span name>"
            row = page.get_by_text(f"{FLAGS_SERVICE}: {name}", exact=True)
            assert await row.count() >= 1, f"span {name!r} of {FLAGS_SERVICE} not rendered"
        assert trace_id in await page.content()
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTEFACTS / "trace-view.png"))
        await page.screenshot(path=str(SCREENSHOT))


async def test_the_node_demo_continues_our_trace_into_zipkin() -> None:
    """examples/demo-node (OpenTelemetry JS, @opentelemetry/exporter-zipkin) through its HAProxy front."""
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    node = f"http://127.0.0.1:{os.environ.get('NODE_DEMO_PORT', '8200')}"
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{node}/", params={"user": "e2e-trace"}, headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        assert r.status_code == 200, r.text
        spans = await _spans_of(http, trace_id, wait_s=60, service="demo-node")
    assert [(s["kind"], s.get("parentId")) for s in spans] == [("SERVER", parent_id)], spans


async def test_any_app_s_otlp_traces_open_in_zipkin_lens() -> None:
    """The real OpenTelemetry Python SDK with its default OTLP/HTTP exporter (protobuf) to :4318, the port
    any app is pointed at: HAProxy -> intake, translated to Zipkin's format, shown in Lens."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    service = f"otlp-app-{secrets.token_hex(3)}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    otlp = f"http://127.0.0.1:{os.environ.get('OTLP_HTTP_PORT', '4318')}/v1/traces"
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp)))
    tracer = provider.get_tracer("e2e")
    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT):
            pass
    provider.shutdown()
    trace_id = f"{root.get_span_context().trace_id:032x}"
    async with httpx.AsyncClient(timeout=10) as http:
        spans = await _spans_of(http, trace_id, wait_s=30, service=service)
    assert sorted((s["name"], s.get("kind")) for s in spans) == [("charge card", "CLIENT"), ("get /checkout", "SERVER")]
    async with chromium_page(height=720) as page:
        shown = await page.goto(f"{ZIPKIN}/zipkin/traces/{trace_id}")
        assert shown is not None and shown.status == 200
        await page.get_by_text(f"{service}: charge card", exact=True).first.wait_for(state="visible", timeout=20_000)
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTEFACTS / "trace-view-otlp.png"))
