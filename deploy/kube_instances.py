"""Start a version on a colour in Kubernetes: patch the colour's Deployment to the version's image (and
a `version` label on its pods), then wait for the rollout the way `kubectl rollout status` does. The
traffic switch (deploy/traffic/kubernetes.py) then health-gates on Ready pods as everywhere else.

    [instances]
    kind = "kubernetes"
    namespace = "default"
    deployment = "{app}-{colour}"             # the Deployment of each colour
    container = "app"                         # its container to change (default: the first)
    image = "registry.example/demo:{version}"
    kubeconfig = "~/.kube/config"             # as [traffic]; `in-cluster` inside the cluster
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from deploy.app import AppSpec
from deploy.instances import InstanceError
from deploy.traffic.kubernetes import KubernetesSwitch
from deploy.traffic.weights import TrafficError

__all__ = ["KubernetesInstances"]


@dataclass(kw_only=True)
class KubernetesInstances:
    app: str
    image: str
    namespace: str = "default"
    deployment: str = "{app}-{colour}"
    container: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    ready_timeout_s: float = 300

    @classmethod
    def from_spec(cls, spec: AppSpec) -> KubernetesInstances:
        i = spec.instances
        if not i.get("image") or "{version}" not in str(i["image"]):
            raise ValueError(f"{spec.source}: [instances] kind = 'kubernetes' needs image = '...:{{version}}'")
        return cls(app=spec.name, image=str(i["image"]), namespace=str(i.get("namespace", "default")),
                   deployment=str(i.get("deployment", "{app}-{colour}")), container=i.get("container") or None,
                   kubeconfig=i.get("kubeconfig") or None, context=i.get("context") or None,
                   ready_timeout_s=float(i.get("ready_timeout_s", 300)))

    def _api(self) -> KubernetesSwitch:
        # the traffic switch's client loading and error wording, on a switch that never switches
        return KubernetesSwitch(colours=(), namespace=self.namespace, kubeconfig=self.kubeconfig, context=self.context)

    async def start(self, colour: str, version: str) -> None:
        name = self.deployment.format(app=self.app, colour=colour)
        api = self._api()
        try:
            current = await api._call(f"Deployment {name}", lambda c: _apps(c).read_namespaced_deployment(name, self.namespace))
            pod = current.spec.template.spec
            if pod is None:
                raise InstanceError(f"Deployment {name} has no pod template spec")
            containers = pod.containers
            target = next((ct.name for ct in containers if ct.name == self.container), None) if self.container \
                else containers[0].name
            if target is None:
                raise InstanceError(f"Deployment {name} has no container {self.container!r}")
            body = {"spec": {"template": {"metadata": {"labels": {"version": version}},
                                          "spec": {"containers": [{"name": target,
                                                                   "image": self.image.format(version=version)}]}}}}
            await api._call(f"Deployment {name}", lambda c: _apps(c).patch_namespaced_deployment(name, self.namespace, body))
            await self._rolled_out(api, name)
        except TrafficError as exc:
            raise InstanceError(str(exc)) from None

    async def _rolled_out(self, api: KubernetesSwitch, name: str) -> None:
        """`kubectl rollout status`: the controller saw this generation and every replica is updated and available."""
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            d: Any = await api._call(f"Deployment {name}", lambda c: client.AppsV1Api(c).read_namespaced_deployment(
                name, self.namespace))
            want, st = d.spec.replicas or 1, d.status
            if st and (st.observed_generation or 0) >= (d.metadata.generation or 0) \
                    and (st.updated_replicas or 0) >= want and (st.available_replicas or 0) >= want \
                    and (st.replicas or 0) <= want:
                return
            if time.monotonic() > deadline:
                raise InstanceError(f"Deployment {self.namespace}/{name} not rolled out after {self.ready_timeout_s:.0f}s "
                                    f"(updated {st.updated_replicas if st else 0}, available "
                                    f"{st.available_replicas if st else 0} of {want})")
            await asyncio.sleep(0.5)


def _apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)
