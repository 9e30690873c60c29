"""A small fake Kubernetes API server (Starlette on loopback) for the Kubernetes traffic switch.

GET / PATCH of Services, Deployments and Gateway API HTTPRoutes, GET of pods by label selector, a bearer token,
resourceVersion preconditions (409), 404 and 415 as the real API server words them. Every request is
recorded (method, path, content type, body) so tests see what the official client really sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["FakeKube", "merge_patch"]

MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386; for the maps and whole lists these tests patch, strategic merge does the same."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def status(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": message, "reason": reason, "code": code}, status_code=code)


@dataclass
class FakeKube:
    token: str = "fake-token"
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    after_get: Callable[[str], None] | None = None  # another writer, between our read and our write
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    def put(self, path: str, obj: dict[str, Any]) -> None:
        obj.setdefault("metadata", {})["resourceVersion"] = "1"
        self.objects[path] = obj

    def bump(self, path: str, change: Callable[[dict[str, Any]], None]) -> None:
        change(self.objects[path])
        meta = self.objects[path]["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api/v1/namespaces/{ns}/services/{name}", self.object, methods=["GET", "PATCH"]),
            Route("/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/{name}", self.object,
                  methods=["GET", "PATCH"]),
            Route("/apis/apps/v1/namespaces/{ns}/deployments/{name}", self.object, methods=["GET", "PATCH"]),
            Route("/api/v1/namespaces/{ns}/pods", self.list_pods, methods=["GET"]),
        ])

    async def object(self, request: Request) -> JSONResponse:
        path, kind = request.url.path, request.url.path.split("/")[-2]
        body = await request.body()
        self.requests.append({"method": request.method, "path": path, "content_type": request.headers.get("content-type"),
                              "body": json.loads(body) if body else None})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        if path not in self.objects:
            return status(404, "NotFound", f'{kind} "{request.path_params["name"]}" not found')
        if request.method == "GET":
            answer = json.loads(json.dumps(self.objects[path]))
            if self.after_get:
                self.after_get(path)
            return JSONResponse(answer)
        if request.headers.get("content-type") not in MERGE_TYPES:
            return status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format")
        patch = json.loads(body)
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        current = self.objects[path]["metadata"]["resourceVersion"]
        if wanted is not None and wanted != current:
            return status(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{request.path_params["name"]}": '
                          f"the object has been modified; please apply your changes to the latest version and try again")
        self.objects[path] = merge_patch(self.objects[path], patch)
        self.objects[path]["metadata"]["resourceVersion"] = str(int(current) + 1)
        if "spec" in patch and "/deployments/" in path:  # the API server counts spec changes
            meta = self.objects[path]["metadata"]
            meta["generation"] = int(meta.get("generation", 1)) + 1
        return JSONResponse(self.objects[path])

    async def list_pods(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        wanted = dict(p.split("=", 1) for p in request.query_params.get("labelSelector", "").split(",") if p)
        ns = request.path_params["ns"]
        items = [p for p in self.pods if p["metadata"].get("namespace") == ns
                 and all(p["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]
        return JSONResponse({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})

    async def start(self) -> None:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server and self._task:
            self._server.should_exit = True
            await self._task

    def kubeconfig(self, path: Path, *, token: str | None = None) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "fake", "user": {"token": token or self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        return path
