"""`/console/sla`: per service, error rate, p95 latency and memory over time with the trigger thresholds
drawn, the error budget left and the 1 h / 6 h / 3 d burn rates (uPlot, static/charts.js), from the SLA
service's `/api/sla/{service}/series` (embedded in the page; `/console/sla/{service}/series.json` to refresh),
and the numbers now in words ("error rate 15.7 % > 5 %")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import HTMLResponse, JSONResponse

from services.console.auth import Session, viewer
from services.console.human import budget_text
from services.console.ops_api import UpstreamError, ops_api
from services.console.sla_views import now_lines
from services.console.templating import render

__all__ = ["router", "RANGES"]

router = APIRouter()

Service = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")]
Viewer = Annotated[Session | None, Depends(viewer)]
Hours = Annotated[float, Query(gt=0, le=72)]
RANGES = (1, 6, 24, 72)


def _pick(services: list[str], wanted: str) -> str | None:
    if wanted in services:
        return wanted
    return "demo" if "demo" in services else (services[0] if services else None)


@router.get("/sla", response_class=HTMLResponse)
async def sla_page(request: Request, session: Viewer, service: str = "", hours: Hours = 6) -> HTMLResponse:
    api = ops_api(request, "sla")
    try:
        overview: dict[str, Any] = await api.call("GET", "/api/sla")
        snapshots = {s["service"]: s for s in overview["services"]}
        chosen = _pick(sorted(snapshots), service)
        data = await api.call("GET", f"/api/sla/{chosen}/series", params={"hours": hours},
                              missing_ok=True) if chosen else None
    except UpstreamError as exc:
        return render(request, "ops_error.html", status_code=exc.status, page="sla", session=session, title="SLA",
                      message=exc.message, back="/console/sla")
    snap = snapshots.get(chosen or "")
    budgets = {basis: budget_text(b.get("budget_remaining_ratio")) for basis, b in (snap or {}).get("budgets", {}).items()}
    lines = now_lines(snap, (data or {}).get("thresholds", {})) if snap else []
    return render(request, "sla.html", page="sla", session=session, services=sorted(snapshots), service=chosen,
                  snap=snap, lines=lines, budgets=budgets, hours=hours, ranges=RANGES, series=data,
                  objective=overview.get("objective"))


@router.get("/sla/{service}/series.json")
async def series(request: Request, service: Service, session: Viewer, hours: Hours = 6) -> JSONResponse:
    """The SLA service's series for the charts (the same JSON), read with the console's token."""
    try:
        data = await ops_api(request, "sla").call("GET", f"/api/sla/{service}/series", params={"hours": hours})
    except UpstreamError as exc:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)
    return JSONResponse(data)
