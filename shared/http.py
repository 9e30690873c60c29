"""Serving a FastAPI app: uvicorn on loopback, clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn
from fastapi import APIRouter, FastAPI

__all__ = ["serve", "healthz_router"]


def healthz_router(service: str) -> APIRouter:
    """`GET /healthz`: the liveness probe HAProxy and supervisord's waiters use."""
    router = APIRouter()

    @router.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "pass", "service": service}

    return router


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run until SIGTERM/SIGINT; uvicorn drains in-flight requests and runs the lifespan exit."""
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=10)
