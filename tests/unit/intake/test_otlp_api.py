"""`POST /v1/metrics` as the OTLP/HTTP spec says: encodings, gzip, partial success, 400 / 413 / 415 / 503."""

from __future__ import annotations

import gzip
from pathlib import Path

from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from shared.events import ProcessStatsReported, RequestsObserved
from tests.unit.intake.build import duration, export, hist_point
from tests.unit.intake.conftest import Env

RECORDED = Path(__file__).resolve().parents[2] / "contract" / "otlp"
PROTO = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


def _one_request(count: int = 3, *, time_s: float = 10.0, service: str | None = "shop") -> bytes:
    buckets = [count] + [0] * 14
    return export(duration(hist_point(buckets=buckets, time_s=time_s)), service=service).SerializeToString()


async def test_protobuf_export_answers_an_empty_response_and_publishes(env: Env) -> None:
    r = await env.client.post("/v1/metrics", content=(RECORDED / "python-sdk-1.binpb").read_bytes(), headers=PROTO)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-protobuf"
    assert not ExportMetricsServiceResponse.FromString(r.content).HasField("partial_success")
    assert [type(e) for _, e in env.pub.published] == [RequestsObserved, ProcessStatsReported]


async def test_json_export_answers_json(env: Env) -> None:
    r = await env.client.post("/v1/metrics", content=(RECORDED / "node-sdk-1.json").read_bytes(), headers=JSON)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {}
    assert len(env.pub.of_type(RequestsObserved)) == 1


async def test_gzip_bodies_are_inflated(env: Env) -> None:
    r = await env.client.post("/v1/metrics", content=gzip.compress(_one_request(4)),
                              headers={**PROTO, "content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert [e.count for e in env.pub.of_type(RequestsObserved)] == [4]  # type: ignore[attr-defined]


async def test_refused_points_come_back_as_partial_success(env: Env) -> None:
    r = await env.client.post("/v1/metrics", content=_one_request(service=None), headers=PROTO)
    assert r.status_code == 200
    partial = ExportMetricsServiceResponse.FromString(r.content).partial_success
    assert partial.rejected_data_points == 1
    assert "service.name" in partial.error_message
    assert env.pub.published == []


async def test_undecodable_bodies_are_400_with_a_status(env: Env) -> None:
    r = await env.client.post("/v1/metrics", content=b"\xff\xff\xff\xff", headers=PROTO)
    assert r.status_code == 400
    assert "not a protobuf ExportMetricsServiceRequest" in Status.FromString(r.content).message
    r = await env.client.post("/v1/metrics", content=b'{"resourceMetrics": 7}', headers=JSON)
    assert r.status_code == 400
    status = json_format.Parse(r.content, Status())
    assert "OTLP/JSON" in status.message
    r = await env.client.post("/v1/metrics", content=b"\x1f\x8b not gzip", headers={**PROTO, "content-encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in Status.FromString(r.content).message


async def test_unknown_content_type_or_encoding_is_415(env: Env) -> None:
    r = await env.client.post("/v1/metrics", content=_one_request(), headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert "application/x-protobuf" in Status.FromString(r.content).message
    r = await env.client.post("/v1/metrics", content=_one_request(), headers={**PROTO, "content-encoding": "br"})
    assert r.status_code == 415 and "br" in Status.FromString(r.content).message


async def test_too_large_is_413_raw_or_inflated(env: Env) -> None:
    cap = env.settings.max_otlp_bytes
    r = await env.client.post("/v1/metrics", content=b"\0" * (cap + 1), headers=PROTO)
    assert r.status_code == 413
    bomb = gzip.compress(b"\0" * (cap * 4))
    assert len(bomb) < cap
    r = await env.client.post("/v1/metrics", content=bomb, headers={**PROTO, "content-encoding": "gzip"})
    assert r.status_code == 413
    assert f"more than {cap} bytes" in Status.FromString(r.content).message


async def test_kafka_down_is_503_retryable_and_the_retry_counts_the_same(env: Env) -> None:
    await env.client.post("/v1/metrics", content=_one_request(2, time_s=10), headers=PROTO)
    env.pub.fail_with = ConnectionError("broker away")
    r = await env.client.post("/v1/metrics", content=_one_request(5, time_s=20), headers=PROTO)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    env.pub.fail_with = None
    r = await env.client.post("/v1/metrics", content=_one_request(5, time_s=20), headers=PROTO)
    assert r.status_code == 200
    assert [e.count for e in env.pub.of_type(RequestsObserved)] == [2, 3]  # type: ignore[attr-defined]
