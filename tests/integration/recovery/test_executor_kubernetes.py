"""The Kubernetes executor (issue 14): the official client's real requests against deploy's fake API server,
with a stand-in ReplicaSet that replaces a deleted pod after a while. Pods go one at a time: the next is
deleted only once the previous one's replacement is Ready."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.recovery.executors import ExecutorError, Target
from services.recovery.executors.kubernetes import KubernetesExecutor
from tests.integration.deploy.fake_kube import FakeKube, status

NS = "shop"
LABELS = {"app": "shop", "color": "blue"}


def pod(name: str, *, ready: bool = True) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": dict(LABELS)},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


class PodKube(FakeKube):
    """FakeKube plus pod deletion; a deleted pod's replacement appears at once and is Ready `ready_after_s` later."""

    ready_after_s = 0.3
    events: list[str]
    _names = itertools.count(1)

    def app(self) -> Starlette:
        app = super().app()
        app.router.routes.append(Route("/api/v1/namespaces/{ns}/pods/{name}", self.delete_pod, methods=["DELETE"]))
        return app

    async def delete_pod(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return status(403, "Forbidden", 'pods is forbidden: User "x" cannot delete resource "pods"')
        name = request.path_params["name"]
        gone = next((p for p in self.pods if p["metadata"]["name"] == name), None)
        if gone is None:
            return status(404, "NotFound", f'pods "{name}" not found')
        ready_now = [p["metadata"]["name"] for p in self.pods if p["status"]["conditions"][0]["status"] == "True"]
        self.events.append(f"delete {name} (ready: {', '.join(sorted(ready_now))})")
        self.pods.remove(gone)
        fresh = pod(f"shop-blue-new{next(self._names)}", ready=False)
        self.pods.append(fresh)
        asyncio.get_running_loop().call_later(self.ready_after_s, self._ready, fresh)
        return JSONResponse(gone)

    def _ready(self, p: dict[str, Any]) -> None:
        p["status"]["conditions"][0]["status"] = "True"
        self.events.append(f"ready {p['metadata']['name']}")


@pytest.fixture
async def kube() -> AsyncIterator[PodKube]:
    fake = PodKube(pods=[pod("shop-blue-a"), pod("shop-blue-b")])
    fake.events = []
    await fake.start()
    yield fake
    await fake.stop()


def executor(kube: PodKube, tmp_path: Path, **kw: Any) -> KubernetesExecutor:
    return KubernetesExecutor(namespace=NS, kubeconfig=str(kube.kubeconfig(tmp_path / "kubeconfig", **kw)),
                              ready_timeout_s=5, poll_s=0.05)


async def test_each_pod_is_deleted_after_the_previous_replacement_is_ready(kube: PodKube, tmp_path: Path) -> None:
    target = Target(instance="shop-blue", program="app=shop,color=blue")
    done = await executor(kube, tmp_path).restart(target)
    assert kube.events == ["delete shop-blue-a (ready: shop-blue-a, shop-blue-b)", "ready shop-blue-new1",
                           "delete shop-blue-b (ready: shop-blue-b, shop-blue-new1)", "ready shop-blue-new2"]
    assert done.before == "pods shop-blue-a, shop-blue-b" and done.after == "pods shop-blue-new1, shop-blue-new2"
    print(f"\nkubernetes: two pods replaced one at a time in {done.answered_s:.2f}s")


async def test_without_rights_to_delete_pods_the_error_says_so(kube: PodKube, tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="not allowed"):
        await executor(kube, tmp_path, token="wrong").restart(Target(instance="x", program="app=shop"))


async def test_no_ready_pod_for_the_selector_is_an_error_not_a_silent_success(kube: PodKube, tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="no Ready pod matches app=nothing"):
        await executor(kube, tmp_path).restart(Target(instance="x", program="app=nothing"))
