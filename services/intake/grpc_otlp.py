"""Inbound edge: OTLP/gRPC `MetricsService.Export`, the same mapping as `POST /v1/metrics` (off unless
`INTAKE_GRPC_PORT` is set: OTLP's 4317 is Jaeger's in compose)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import grpc  # type: ignore[import-untyped]  # grpcio ships no type hints (stubs not installed here)
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as rpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (ExportMetricsServiceRequest,
                                                                           ExportMetricsServiceResponse)

from services.intake.api import publish_all
from services.intake.otlp import success
from services.intake.service import Intake
from shared.kafka import Publisher

__all__ = ["MetricsService", "serve_grpc"]

logger = logging.getLogger(__name__)


class MetricsService(rpc.MetricsServiceServicer):
    def __init__(self, *, intake: Intake, publisher: Callable[[], Publisher]) -> None:
        self.intake = intake
        self.publisher = publisher

    async def Export(self, request: ExportMetricsServiceRequest,  # noqa: N802 - the protocol's name
                     context: grpc.aio.ServicerContext) -> ExportMetricsServiceResponse:
        mapped = self.intake.map_export(request)
        try:
            await publish_all(self.publisher(), mapped.events)
        except Exception:  # noqa: BLE001 - UNAVAILABLE is retryable for OTLP exporters
            logger.exception("publishing %d events of an OTLP/gRPC export failed", len(mapped.events))
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Kafka did not take the events; retry")
        self.intake.commit(mapped)
        return success(rejected=mapped.rejected, message=mapped.message)


@asynccontextmanager
async def serve_grpc(*, service: MetricsService, host: str, port: int, max_bytes: int) -> AsyncIterator[int]:
    """Serve until the block ends; yields the bound port (0 asks for a free one)."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_bytes)])
    rpc.add_MetricsServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"OTLP/gRPC: cannot listen on {host}:{port}")
    await server.start()
    try:
        yield bound
    finally:
        await server.stop(grace=5)
