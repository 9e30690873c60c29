"""Starting a version on a colour in Kubernetes (deploy/kube_instances.py): the official client's real
requests against the fake API server, with a tiny stand-in for the Deployment controller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deploy.app import AppSpec, Colour
from deploy.instances import InstanceError, make_instances
from deploy.kube_instances import KubernetesInstances
from tests.integration.deploy.fake_kube import FakeKube

NS = "shop"
GREEN = f"/apis/apps/v1/namespaces/{NS}/deployments/demo-green"


def deployment(name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "generation": 1},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "demo"}},
                     "template": {"metadata": {"labels": {"app": "demo"}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}


@pytest.fixture
async def kube() -> AsyncIterator[FakeKube]:
    fake = FakeKube()
    fake.put(GREEN, deployment("demo-green", "registry.example/demo:v1"))
    await fake.start()
    yield fake
    await fake.stop()


async def controller(kube: FakeKube, *, after_s: float = 0.3) -> None:
    """Rolls a Deployment out `after_s` after its generation moved (what the real controller reports)."""
    while True:
        d = kube.objects[GREEN]
        if d["status"]["observedGeneration"] < d["metadata"]["generation"]:
            await asyncio.sleep(after_s)
            d["status"] = {"observedGeneration": d["metadata"]["generation"], "replicas": 2, "updatedReplicas": 2,
                           "availableReplicas": 2}
        await asyncio.sleep(0.05)


def spec(tmp_path: Path, kube: FakeKube, **instances: Any) -> AppSpec:
    return AppSpec(name="demo", source=tmp_path / "safeguard.toml", schema="demo", migrations=tmp_path,
                   url="http://demo", colours={c: Colour(name=c, url=f"http://{c}", program=c) for c in ("blue", "green")},
                   instances={"kind": "kubernetes", "namespace": NS, "image": "registry.example/demo:{version}",
                              "kubeconfig": str(kube.kubeconfig(tmp_path / "kubeconfig")), **instances})


async def test_a_version_starts_by_patching_the_image_and_waits_for_the_rollout(kube: FakeKube, tmp_path: Path) -> None:
    instances = make_instances(spec(tmp_path, kube))
    assert isinstance(instances, KubernetesInstances)
    task = asyncio.create_task(controller(kube))
    try:
        await asyncio.wait_for(instances.start("green", "v2"), timeout=20)
    finally:
        task.cancel()
    [patch] = [r for r in kube.requests if r["method"] == "PATCH"]
    assert patch["content_type"] == "application/strategic-merge-patch+json"
    template = kube.objects[GREEN]["spec"]["template"]
    assert template["spec"]["containers"] == [{"name": "app", "image": "registry.example/demo:v2"}]
    assert template["metadata"]["labels"] == {"app": "demo", "version": "v2"}
    # the call came back only once the controller reported the new generation rolled out
    assert kube.objects[GREEN]["status"]["observedGeneration"] == kube.objects[GREEN]["metadata"]["generation"] == 2


async def test_a_rollout_that_never_finishes_is_a_clear_error(kube: FakeKube, tmp_path: Path) -> None:
    instances = make_instances(spec(tmp_path, kube, ready_timeout_s=1))
    with pytest.raises(InstanceError, match=r"Deployment shop/demo-green not rolled out after 1s \(updated 2, available 2 of 2\)"):
        await instances.start("green", "v2")  # no controller: observedGeneration stays behind


async def test_errors_name_what_is_wrong(kube: FakeKube, tmp_path: Path) -> None:
    with pytest.raises(InstanceError, match="Deployment demo-blue in namespace shop not found"):
        await make_instances(spec(tmp_path, kube)).start("blue", "v2")
    with pytest.raises(InstanceError, match="has no container 'web'"):
        await make_instances(spec(tmp_path, kube, container="web")).start("green", "v2")
    with pytest.raises(ValueError, match="needs image"):
        make_instances(spec(tmp_path, kube, image="registry.example/demo:latest"))
