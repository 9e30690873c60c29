"""The Faust tables of the SLA processor: memory stores restored from their changelog topics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

__all__ = ["Tables", "define_tables"]


@dataclass(frozen=True)
class Tables:
    bucket_to_counts: Any  # faust.Table[str, list]: "<service>|<series>|<bucket>" -> counts
    service_to_status: Any  # faust.Table[str, dict]: watermark, trigger states, instances, probes, budgets


def define_tables(app: faust.App) -> Tables:
    """Keys are strings, values JSON; every write lands in the changelog partition of the event being
    processed, and every input topic is keyed by service, so a service's state moves with its partition."""
    schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
    common: dict[str, Any] = {"default": None, "partitions": 3, "schema": schema}
    return Tables(
        bucket_to_counts=app.Table("bucket_to_counts", help="Time-bucketed request / probe counts", **common),
        service_to_status=app.Table("service_to_status", help="Per-service detection state", **common),
    )
