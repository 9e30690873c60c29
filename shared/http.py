"""Serving a FastAPI app: uvicorn on loopback, clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sys

import uvicorn
from fastapi import APIRouter, FastAPI

from shared.guard import install_guard

__all__ = ["serve", "healthz_router"]


def healthz_router(service: str) -> APIRouter:
    """`GET /healthz`: the liveness probe HAProxy and supervisord's waiters use. It fails (503) while a
    Kafka consumer of this process is dead or stuck (`shared.kafka.liveness`); "warn" while one retries."""
    from fastapi.responses import JSONResponse

    from shared.kafka.liveness import consumer_health

    router = APIRouter()

    @router.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        health = consumer_health()
        body = {"status": health.status, "service": service, "consumers": health.consumers}
        return JSONResponse(body, status_code=503 if health.status == "fail" else 200)

    return router


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run behind `shared.guard` (Host allow-list, no cross-site writes, size caps) until SIGTERM/SIGINT;
    uvicorn drains in-flight requests and runs the lifespan exit.

    uvicorn re-raises the signal it caught once it has shut down; these handlers turn that into
    exit status 0, so a process manager sees a clean exit rather than death by signal.
    """
    install_guard(app, own_host=host)  # no-op when create_app installed it with its own settings
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=10)
