"""Inbound edge: GET /api/health (IETF application/health+json) and GET /api/system/status."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.health.service import health_document

__all__ = ["router", "HEALTH_JSON"]

HEALTH_JSON = "application/health+json"
router = APIRouter()
_NO_STORE = {"Cache-Control": "no-store"}


def _state(request: Request) -> Any:
    return request.app.state


@router.get("/api/health", tags=["health"], response_class=Response,
            responses={200: {"content": {HEALTH_JSON: {}}}, 503: {"content": {HEALTH_JSON: {}}}})
async def health(request: Request) -> Response:
    """Overall health (draft-inadarei-api-health-check): pass/warn -> 200, fail -> 503."""
    doc = health_document(list(_state(request).runner.states.values()))
    code = 503 if doc["status"] == "fail" else 200
    return Response(json.dumps(doc), status_code=code, media_type=HEALTH_JSON, headers=_NO_STORE)


@router.get("/api/system/status", tags=["health"])
async def system_status(request: Request) -> Response:
    """Every service and dependency, app instances, breakers, flags, open incidents, SLA budget."""
    st = _state(request)
    body = st.view.render(list(st.runner.states.values()), feed=st.feed.status() if st.feed else {"connected": False})
    body["probes"] = {"interval_seconds": st.runner.interval_s, "settle_interval_seconds": st.runner.settle_s,
                      "settling": [t.name for t in st.runner.settling()], "cycles": st.runner.cycles,
                      "last_cycle_ms": round(st.runner.last_cycle_ms, 1)}
    return Response(json.dumps(body, default=str), media_type="application/json", headers=_NO_STORE)
