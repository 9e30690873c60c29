"""Inbound edge: `POST /v1/metrics` and `POST /v1/traces` (OTLP/HTTP) and `POST /api/beacon` (page loads)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.intake import otlp, traces
from services.intake.beacon import BeaconError, parse_beacon
from services.intake.service import Intake
from services.intake.settings import IntakeSettings
from shared.events import Event
from shared.kafka import Publisher

__all__ = ["BeaconOrigins", "build_router", "publish_all"]

logger = logging.getLogger(__name__)
_BEACON_TYPES = ("application/json", "text/plain")


async def publish_all(publisher: Publisher, events: list[Event]) -> None:
    """Every event acknowledged by Kafka, or an exception (some may have gone: consumers dedupe on ids)."""
    await asyncio.gather(*(publisher.publish(e) for e in events))


def _otlp_answer(wire: otlp.Wire, status: int, message: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(wire.encode(message), status_code=status, media_type=wire.content_type, headers=headers)


async def export_metrics(request: Request, *, intake: Intake, max_bytes: int) -> Response:
    try:
        wire = otlp.wire_of(request.headers.get("content-type", ""))
    except otlp.WireError as exc:
        return _otlp_answer(otlp.Wire(json=False), exc.status, otlp.failure(status=exc.status, message=exc.message))
    try:
        export = otlp.decode(body=await request.body(), wire=wire, max_bytes=max_bytes,
                             content_encoding=request.headers.get("content-encoding", ""))
    except otlp.WireError as exc:
        return _otlp_answer(wire, exc.status, otlp.failure(status=exc.status, message=exc.message))
    mapped = intake.map_export(export)
    try:
        await publish_all(request.app.state.publisher, mapped.events)
    except Exception:  # noqa: BLE001 - any Kafka failure: the client retries (OTLP: 503 is retryable)
        logger.exception("publishing %d events of an OTLP export failed", len(mapped.events))
        return _otlp_answer(wire, 503, otlp.failure(status=503, message="Kafka did not take the events; retry"),
                            headers={"Retry-After": "5"})
    intake.commit(mapped)
    return _otlp_answer(wire, 200, otlp.success(rejected=mapped.rejected, message=mapped.message))


async def export_traces(request: Request, *, max_bytes: int) -> Response:
    """OTLP traces to the trace view (Zipkin), translated (services/intake/traces.py); 404 when none is set."""
    wire = otlp.Wire(json=request.headers.get("content-type", "").split(";")[0].strip().lower() == otlp.JSON)
    forwarder: traces.TraceForwarder | None = getattr(request.app.state, "traces", None)
    if forwarder is None:
        return _otlp_answer(wire, 404, otlp.failure(status=404, message=(
            "no trace view here: set OTEL_EXPORTER_ZIPKIN_ENDPOINT on the intake to take OTLP traces")))
    try:
        wire = otlp.wire_of(request.headers.get("content-type", ""))
        export = traces.decode(body=await request.body(), wire=wire, max_bytes=max_bytes,
                               content_encoding=request.headers.get("content-encoding", ""))
        translated = traces.to_zipkin(export)
        await forwarder.send(translated.spans)
    except otlp.WireError as exc:
        return _otlp_answer(wire, exc.status, otlp.failure(status=exc.status, message=exc.message))
    except traces.ZipkinAway as exc:
        logger.warning("OTLP traces not forwarded: %s", exc)
        return _otlp_answer(wire, 503, otlp.failure(status=503, message=f"{exc}; retry"), headers={"Retry-After": "5"})
    return _otlp_answer(wire, 200, traces.success(translated))


def _cors(origin: str | None) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}


def _refuse(status: int, message: str, origin: str | None, code: str) -> Response:
    return Response(json.dumps({"detail": message, "errorCode": code}), status_code=status,
                    media_type="application/json", headers=_cors(origin))


def _origin_allowed(origin: str | None, settings: IntakeSettings) -> bool:
    allowed = {o.rstrip("/").lower() for o in settings.beacon_origins}
    return origin is None or origin.rstrip("/").lower() in allowed


class BeaconOrigins:
    """Pure ASGI middleware, outside the guard: a beacon (or its preflight) from a page not in the allow-list
    is 403 naming INTAKE_BEACON_ORIGINS (the guard lets the listed pages write; it would refuse the rest
    with its own, less helpful, cross-site message)."""

    def __init__(self, app: ASGIApp, *, settings: IntakeSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/beacon":
            origin = Headers(scope=scope).get("origin")
            if not _origin_allowed(origin, self.settings):
                message = f"origin {origin!r} may not send beacons (INTAKE_BEACON_ORIGINS)"
                await _refuse(403, message, None, "ORIGIN")(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def post_beacon(request: Request, *, settings: IntakeSettings) -> Response:
    origin = request.headers.get("origin")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in _BEACON_TYPES:
        return _refuse(415, f"content type {media or '(none)'!r}: send JSON as application/json or text/plain",
                       origin, "CONTENT_TYPE")
    body = await request.body()
    if len(body) > settings.beacon_max_bytes:
        return _refuse(413, f"a beacon is {len(body)} bytes; at most {settings.beacon_max_bytes} are taken",
                       origin, "TOO_LARGE")
    try:
        event = parse_beacon(body, max_ms=settings.beacon_max_ms).event()
    except BeaconError as exc:
        return _refuse(exc.status, exc.message, origin, "INVALID")
    try:
        await request.app.state.publisher.publish(event)
    except Exception:  # noqa: BLE001 - the browser does not retry; say so
        logger.exception("publishing a page-load beacon failed")
        return _refuse(503, "Kafka did not take the beacon", origin, "UNAVAILABLE")
    return Response(status_code=204, headers=_cors(origin))


def build_router(*, intake: Intake, settings: IntakeSettings,
                 beacon_limit: Callable[..., Awaitable[Any]]) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/metrics", tags=["otlp"], response_class=Response)
    async def metrics(request: Request) -> Response:
        """OTLP/HTTP metrics export (protobuf or JSON, gzip or not); 200 with partial_success for refused points."""
        return await export_metrics(request, intake=intake, max_bytes=settings.max_otlp_bytes)

    @router.post("/v1/traces", tags=["otlp"], response_class=Response)
    async def otlp_traces(request: Request) -> Response:
        """OTLP/HTTP traces export (protobuf or JSON, gzip or not), shown in the trace view: translated to
        Zipkin JSON v2 and posted to `OTEL_EXPORTER_ZIPKIN_ENDPOINT` (Zipkin 3.5.1 takes no OTLP itself)."""
        return await export_traces(request, max_bytes=settings.max_otlp_bytes)

    @router.options("/api/beacon", tags=["beacon"], response_class=Response)
    async def beacon_preflight(request: Request) -> Response:
        """CORS preflight of a `fetch` with application/json (`navigator.sendBeacon` with text/plain needs none)."""
        origin = request.headers.get("origin")  # allowed: BeaconOrigins refused the others
        return Response(status_code=204, headers={**_cors(origin), "Access-Control-Allow-Methods": "POST",
                                                  "Access-Control-Allow-Headers": "content-type",
                                                  "Access-Control-Max-Age": "86400"})

    @router.post("/api/beacon", tags=["beacon"], response_class=Response, status_code=204,
                 dependencies=[Depends(beacon_limit)])
    async def beacon(request: Request) -> Response:
        """A page-load beacon -> `PageLoadObserved`: 204, or 403 origin, 413 size, 415 type, 422 values, 429 rate."""
        return await post_beacon(request, settings=settings)

    return router
