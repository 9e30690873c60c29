"""Composition root of the SLA processor: one Faust app, built at run time."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from services.sla.settings import SlaSettings

__all__ = ["create_app"]


def create_app(settings: SlaSettings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka.bootstrap_servers}",
        datadir=settings.data_dir,
        web_host=settings.host,
        web_port=settings.port,
        web_bind=settings.host,
        topic_partitions=3,
        topic_replication_factor=1,
        producer_acks=-1,
        store="memory://",
    )

    @app.page("/healthz")
    class Healthz(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            return self.json({"status": "pass", "service": "sla"})

    return app
