"""A small fake Docker Engine API (Starlette served by uvicorn on a unix socket) and fake compose
containers of the demo's colours.

`GET /containers/json` filters by `label` the way dockerd does (every `key=value` must match);
`GET /containers/{id}/json` gives Config.Env and Mounts; `POST /containers/{id}/restart` "restarts" a
container: it reads `<mount source>/<service>` again, as the demo does at start, and its /healthz (a
real HTTP server on a loopback port) answers that version from then on. Requests are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["Container", "FakeDocker", "serve"]


@dataclass
class Container:
    id: str
    service: str
    project: str
    release_source: Path | None  # host side of the bind mount at /data/deploy (None: no mount)
    oneoff: bool = False
    version: str = "v1"
    port: int = 0
    restarts: int = 0
    paused: bool = False  # `docker pause`: the daemon refuses to restart it until it is unpaused
    env: list[str] = field(default_factory=lambda: ["DEMO_RELEASE_DIR=/data/deploy", "PORT=8101"])

    @property
    def labels(self) -> dict[str, str]:
        return {"com.docker.compose.service": self.service, "com.docker.compose.project": self.project,
                "com.docker.compose.oneoff": "True" if self.oneoff else "False"}

    def restart(self) -> None:
        self.restarts += 1
        chosen = self.release_source / self.service if self.release_source else None
        if chosen is not None and chosen.is_file():
            self.version = chosen.read_text().strip()


@dataclass
class FakeDocker:
    containers: list[Container] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    restart_error: str | None = None  # answer restarts with a 500 and this message

    def _find(self, cid: str) -> Container | None:
        return next((c for c in self.containers if c.id == cid), None)

    async def _list(self, request: Request) -> Response:
        self.requests.append(("GET", str(request.url.path) + "?" + request.url.query))
        wanted = json.loads(request.query_params.get("filters", "{}")).get("label", [])
        pairs = [w.partition("=")[::2] for w in wanted]
        found = [c for c in self.containers if all(c.labels.get(k) == v for k, v in pairs)]
        return JSONResponse([{"Id": c.id, "Names": [f"/{c.project}_{c.service}_1"], "Labels": c.labels}
                             for c in found])

    async def _inspect(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path))
        c = self._find(request.path_params["cid"])
        if c is None:
            return JSONResponse({"message": f"No such container: {request.path_params['cid']}"}, status_code=404)
        mounts = [{"Type": "bind", "Source": str(c.release_source), "Destination": "/data/deploy", "RW": False}] \
            if c.release_source else []
        return JSONResponse({"Id": c.id, "Config": {"Env": c.env, "Labels": c.labels}, "Mounts": mounts})

    async def _restart(self, request: Request) -> Response:
        self.requests.append(("POST", request.url.path + "?" + request.url.query))
        c = self._find(request.path_params["cid"])
        if c is None:
            return JSONResponse({"message": f"No such container: {request.path_params['cid']}"}, status_code=404)
        if self.restart_error:
            return JSONResponse({"message": self.restart_error}, status_code=500)
        if c.paused:
            return JSONResponse({"message": f"Cannot restart container {c.id}: container is paused. Unpause the "
                                            "container before stopping or killing"}, status_code=409)
        c.restart()
        return Response(status_code=204)

    async def _unpause(self, request: Request) -> Response:
        self.requests.append(("POST", request.url.path))
        c = self._find(request.path_params["cid"])
        if c is None:
            return JSONResponse({"message": f"No such container: {request.path_params['cid']}"}, status_code=404)
        if not c.paused:
            return JSONResponse({"message": f"Container {c.id} is not paused"}, status_code=409)
        c.paused = False
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/containers/json", self._list),
                                 Route("/containers/{cid}/json", self._inspect),
                                 Route("/containers/{cid}/restart", self._restart, methods=["POST"]),
                                 Route("/containers/{cid}/unpause", self._unpause, methods=["POST"])])

    def health_app(self, c: Container) -> Starlette:
        async def healthz(request: Request) -> Response:
            return JSONResponse({"status": "ok", "version": c.version})
        return Starlette(routes=[Route("/healthz", healthz)])


async def _start(app: Starlette, **where: Any) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    sock = where.pop("sock", None)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **where))
    task = asyncio.create_task(server.serve(sockets=[sock] if sock else None))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task


@contextlib.asynccontextmanager
async def serve(docker: FakeDocker, *, uds: Path) -> AsyncIterator[FakeDocker]:
    """The Engine API on `uds`, and each container's /healthz on a free 127.0.0.1 port (`.port`)."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    try:
        for c in docker.containers:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            c.port = sock.getsockname()[1]
            running.append(await _start(docker.health_app(c), sock=sock))
        running.append(await _start(docker.app(), uds=str(uds)))
        yield docker
    finally:
        for server, _ in running:
            server.should_exit = True  # all at once: each takes a tick of its main loop to stop
        await asyncio.gather(*(task for _, task in running))
