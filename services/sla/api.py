"""HTTP edge on Faust's web server: /healthz, GET /api/sla, GET /api/sla/{service}, /metrics."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from services.sla import metrics, report
from services.sla.agents import Counters
from services.sla.service import SlaCore

__all__ = ["register_views"]


def register_views(app: faust.App, *, core: SlaCore, counters: Counters) -> None:
    @app.page("/healthz")
    class Healthz(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            return self.json({"status": "pass", "service": "sla"})

    @app.page("/api/sla")
    class Overview(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            return self.json(report.overview(core))

    @app.page("/api/sla/{service}")
    class ServiceSla(View):
        async def get(self, request: Request, service: str, **kwargs: Any) -> Response:
            snapshot = report.service_snapshot(core, service)
            if snapshot is None:
                return self.json({"detail": f"no SLA data for service {service!r}"}, status=404)
            return self.json(snapshot)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            snapshots = [s for s in (report.service_snapshot(core, n) for n in core.services()) if s is not None]
            unpublished = {svc: len(core.pending(svc)) for svc in core.services_pending()}
            body = metrics.render(snapshots, counters, unpublished=unpublished).encode()
            return self.bytes(body, content_type=metrics.CONTENT_TYPE)
