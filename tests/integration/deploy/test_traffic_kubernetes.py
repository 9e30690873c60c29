"""The Kubernetes traffic switch: the official client's real requests against a fake API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deploy.app import AppSpec, Colour
from deploy.traffic import TrafficError, make_traffic
from deploy.traffic.kubernetes import KubernetesSwitch
from deploy.traffic.lab import free_port
from tests.integration.deploy.fake_kube import FakeKube

NS = "shop"
SERVICE = f"/api/v1/namespaces/{NS}/services/demo"
ROUTE = f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/demo"


def service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8100}]}}


def pod(name: str, colour: str, *, ready: bool) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS,
                                                            "labels": {"app": "demo", "color": colour}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def route() -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "demo", "namespace": NS},
            "spec": {"parentRefs": [{"name": "gateway"}], "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                 "backendRefs": [{"name": "demo-blue", "port": 80, "weight": 100},
                                 {"name": "demo-green", "port": 80, "weight": 0}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                 "backendRefs": [{"name": "cdn", "port": 80}]}]}}


@pytest.fixture
async def kube() -> AsyncIterator[FakeKube]:
    fake = FakeKube()
    fake.put(SERVICE, service("demo", {"app": "demo", "color": "blue"}))
    for colour in ("blue", "green"):
        fake.put(f"/api/v1/namespaces/{NS}/services/demo-{colour}", service(f"demo-{colour}", {"app": "demo", "color": colour}))
        fake.pods.append(pod(f"demo-{colour}-1", colour, ready=True))
    fake.put(ROUTE, route())
    await fake.start()
    yield fake
    await fake.stop()


def spec(tmp_path: Path, kube: FakeKube, **traffic: Any) -> AppSpec:
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig", token=traffic.pop("token", None))
    return AppSpec(name="demo", source=tmp_path / "safeguard.toml", schema="demo", migrations=tmp_path,
                   url="http://demo", colours={c: Colour(name=c, url=f"http://{c}", program=c) for c in ("blue", "green")},
                   traffic={"kind": "kubernetes", "namespace": NS, "kubeconfig": str(kubeconfig), **traffic})


def patches(kube: FakeKube) -> list[dict[str, Any]]:
    return [r for r in kube.requests if r["method"] == "PATCH"]


async def test_service_mode_flips_the_selector(tmp_path: Path, kube: FakeKube) -> None:
    switch = make_traffic(spec(tmp_path, kube, service="demo"))
    assert isinstance(switch, KubernetesSwitch)
    assert await switch.weights() == {"blue": 100, "green": 0}
    await switch.switch("green")
    assert kube.objects[SERVICE]["spec"]["selector"] == {"app": "demo", "color": "green"}
    [sent] = patches(kube)
    assert sent["path"] == SERVICE and sent["content_type"] == "application/strategic-merge-patch+json"
    assert await switch.weights() == {"blue": 0, "green": 100}
    await switch.set_weights({"blue": 100, "green": 0})
    assert kube.objects[SERVICE]["spec"]["selector"]["color"] == "blue"


async def test_service_mode_refuses_a_canary(tmp_path: Path, kube: FakeKube) -> None:
    switch = make_traffic(spec(tmp_path, kube, service="demo"))
    with pytest.raises(ValueError, match="all or nothing"):
        await switch.set_weights({"blue": 90, "green": 10})
    assert patches(kube) == []


async def test_route_mode_sets_the_backend_weights(tmp_path: Path, kube: FakeKube) -> None:
    switch = make_traffic(spec(tmp_path, kube, route="demo"))
    assert await switch.weights() == {"blue": 100, "green": 0}
    await switch.set_weights({"blue": 90, "green": 10})
    rules = kube.objects[ROUTE]["spec"]["rules"]
    assert rules[0]["backendRefs"] == [{"name": "demo-blue", "port": 80, "weight": 90},
                                       {"name": "demo-green", "port": 80, "weight": 10}]
    assert rules[1] == route()["spec"]["rules"][1]
    assert kube.objects[ROUTE]["spec"]["parentRefs"] == [{"name": "gateway"}]
    [sent] = patches(kube)
    assert sent["content_type"] == "application/merge-patch+json"
    assert sent["body"]["metadata"] == {"resourceVersion": "1"}
    assert await switch.weights() == {"blue": 90, "green": 10}
    await switch.switch("green")
    assert await switch.weights() == {"blue": 0, "green": 100}


async def test_a_colour_without_a_ready_pod_gets_no_traffic(tmp_path: Path, kube: FakeKube) -> None:
    kube.pods = [p for p in kube.pods if p["metadata"]["labels"]["color"] != "green"]
    kube.pods.append(pod("demo-green-1", "green", ready=False))
    for mode in ({"service": "demo"}, {"route": "demo"}):
        switch = make_traffic(spec(tmp_path, kube, **mode))
        assert await switch.healthy("blue")
        assert not await switch.healthy("green")
        with pytest.raises(TrafficError, match="no Ready pod for green"):
            await switch.set_weights({"blue": 50, "green": 50})
    assert patches(kube) == []


async def test_missing_objects_are_404_errors(tmp_path: Path, kube: FakeKube) -> None:
    with pytest.raises(TrafficError, match="Service nope in namespace shop not found \\(404\\)"):
        await make_traffic(spec(tmp_path, kube, service="nope")).weights()
    with pytest.raises(TrafficError, match="HTTPRoute nope in namespace shop not found \\(404\\)"):
        await make_traffic(spec(tmp_path, kube, route="nope")).weights()


async def test_a_concurrent_change_is_a_409_and_is_not_overwritten(tmp_path: Path, kube: FakeKube) -> None:
    def another_writer(path: str) -> None:
        if path == ROUTE:
            kube.after_get = None
            kube.bump(ROUTE, lambda r: r["spec"]["rules"][0]["backendRefs"][0].update(weight=50))

    kube.after_get = another_writer
    switch = make_traffic(spec(tmp_path, kube, route="demo"))
    with pytest.raises(TrafficError, match="changed by someone else since it was read \\(409 Conflict\\)"):
        await switch.set_weights({"blue": 0, "green": 100})
    assert kube.objects[ROUTE]["spec"]["rules"][0]["backendRefs"][0]["weight"] == 50


async def test_a_rule_missing_a_colour_is_refused(tmp_path: Path, kube: FakeKube) -> None:
    kube.bump(ROUTE, lambda r: r["spec"]["rules"][0]["backendRefs"].pop())
    switch = make_traffic(spec(tmp_path, kube, route="demo"))
    with pytest.raises(TrafficError, match="no backendRef for green \\(Service demo-green\\)"):
        await switch.set_weights({"blue": 90, "green": 10})
    assert patches(kube) == []


async def test_bad_credentials_and_an_absent_server_are_clear_errors(tmp_path: Path, kube: FakeKube) -> None:
    with pytest.raises(TrafficError, match="not allowed \\(401"):
        await make_traffic(spec(tmp_path, kube, service="demo", token="wrong")).weights()
    absent = tmp_path / "absent"
    absent.mkdir()
    gone = FakeKube(port=free_port())
    with pytest.raises(TrafficError, match=f"kubernetes API at http://127.0.0.1:{gone.port} unreachable"):
        await make_traffic(spec(absent, gone, service="demo")).weights()
    with pytest.raises(TrafficError, match="cannot load the client configuration"):
        await make_traffic(spec(tmp_path, kube, service="demo", kubeconfig=str(tmp_path / "none"))).weights()


def test_the_description_must_name_a_service_or_a_route(tmp_path: Path) -> None:
    bare = AppSpec(name="demo", source=tmp_path / "safeguard.toml", schema="demo", migrations=tmp_path, url="http://d",
                   colours={"blue": Colour(name="blue", url="http://b", program="b")},
                   traffic={"kind": "kubernetes"})
    with pytest.raises(ValueError, match="needs `service`"):
        make_traffic(bare)
