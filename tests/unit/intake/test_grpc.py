"""OTLP/gRPC `MetricsService.Export` (opt-in, INTAKE_GRPC_PORT): the same mapping, UNAVAILABLE when Kafka refuses."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from shared.events import ProcessStatsReported, RequestsObserved
from shared.ratelimit import RateLimiter
from shared.testing import InMemoryPublisher

RECORDED = Path(__file__).resolve().parents[2] / "contract" / "otlp"


async def test_grpc_export_maps_like_http_and_refuses_when_kafka_does() -> None:
    pub = InMemoryPublisher()
    app = create_app(IntakeSettings(grpc_port=0), publisher=pub, limiter=RateLimiter(storage=None))
    request = ExportMetricsServiceRequest.FromString((RECORDED / "python-sdk-1.binpb").read_bytes())
    async with app.router.lifespan_context(app):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.state.grpc_port}") as channel:
            stub = MetricsServiceStub(channel)
            response = await stub.Export(request, timeout=5)
            assert not response.HasField("partial_success")
            assert [type(e) for _, e in pub.published] == [RequestsObserved, ProcessStatsReported]
            pub.fail_with = ConnectionError("broker away")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Export(ExportMetricsServiceRequest.FromString(
                    (RECORDED / "python-sdk-2.binpb").read_bytes()), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_grpc_is_off_by_default() -> None:
    app = create_app(IntakeSettings(), publisher=InMemoryPublisher(), limiter=RateLimiter(storage=None))
    async with app.router.lifespan_context(app):
        assert not hasattr(app.state, "grpc_port")
