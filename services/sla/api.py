"""HTTP edge on Faust's web server: /healthz, GET /api/sla, GET /api/sla/{service}, GET /api/sla/{service}/series
(the console's charts), /metrics."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from services.sla import metrics, report
from services.sla.agents import Counters, Progress
from services.sla.series import MAX_HOURS, MemoryHistory, service_series
from services.sla.service import SlaCore

__all__ = ["register_views"]


def register_views(app: faust.App, *, core: SlaCore, counters: Counters, progress: Progress,
                   memory_every: float = 5.0) -> None:
    """`memory_every`: how often memory reports are copied into the history the series view shows."""
    memory = _memory_history(app, core=core, every=memory_every)

    @app.page("/healthz")
    class Healthz(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            body, status = _health(progress)
            return self.json(body, status=status)

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

    @app.page("/api/sla/{service}/series")
    class ServiceSeries(View):
        async def get(self, request: Request, service: str, **kwargs: Any) -> Response:
            hours = _hours(request.query.get("hours", "6"))
            if not 0 < hours <= MAX_HOURS:
                return self.json({"detail": f"hours must be a number in (0, {MAX_HOURS:g}]"}, status=422)
            series = service_series(core, service, hours=hours, memory=memory)
            if series is None:
                return self.json({"detail": f"no SLA data for service {service!r}"}, status=404)
            return self.json(series)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request, **kwargs: Any) -> Response:
            return self.bytes(_metrics(core, counters).encode(), content_type=metrics.CONTENT_TYPE)


def _health(progress: Progress) -> tuple[dict[str, str], int]:
    """Pass, or fail (503) while an agent's batch waits on the broker past its limit: the watchdog restarts us."""
    stalled = progress.stalled()
    if stalled is None:
        return {"status": "pass", "service": "sla"}, 200
    return {"status": "fail", "service": "sla", "output": stalled}, 503


def _hours(text: str) -> float:
    """The `hours` query parameter; -1 when it is not a number (refused like any out of range)."""
    try:
        return float(text)
    except ValueError:
        return -1.0


def _metrics(core: SlaCore, counters: Counters) -> str:
    snapshots = [s for s in (report.service_snapshot(core, n) for n in core.services()) if s is not None]
    unpublished = {svc: len(core.pending(svc)) for svc in core.services_pending()}
    return metrics.render(snapshots, counters, unpublished=unpublished)


def _memory_history(app: faust.App, *, core: SlaCore, every: float) -> MemoryHistory:
    memory = MemoryHistory()

    @app.timer(interval=every, name="sla.memory_history")  # type: ignore[untyped-decorator]
    async def keep_memory_history() -> None:
        memory.sample(core)

    return memory
