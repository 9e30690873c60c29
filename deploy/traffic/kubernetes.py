"""The traffic switch on Kubernetes, with the official client (sync: each call runs in a thread).

Two modes, by which key `[traffic]` has:
- `service`: the Service's selector names the live colour (`spec.selector.color = "green"`); a flip
  is all or nothing, so weights must be 0/100.
- `route`: a Gateway API HTTPRoute whose rules send to one Service per colour (`backends`, default
  `<app>-<colour>`); weights are the backendRefs' `weight`, so a canary can be 90/10. The route is
  read, changed and written back with its resourceVersion: a concurrent change is a 409, not lost.
`healthy(colour)` is true when a pod of that colour is Ready (the colour's selector: the Service's
selector with the colour label set, or the colour's own Service in route mode).

    [traffic]
    kind = "kubernetes"
    namespace = "default"
    service = "demo"                 # or: route = "demo" (+ [traffic.backends] blue = "demo-blue")
    label = "color"                  # the selector key that names the colour (default "color")
    kubeconfig = "~/.kube/config"    # default: in-cluster when KUBERNETES_SERVICE_HOST is set, else ~/.kube/config
    context = "kind-demo"            # optional
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from deploy.app import AppSpec
from deploy.traffic.weights import TrafficError, check_weights, to_percent

__all__ = ["KubernetesSwitch"]

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
T = TypeVar("T")


@dataclass(kw_only=True)
class KubernetesSwitch:
    colours: tuple[str, ...]
    namespace: str = "default"
    service: str | None = None
    route: str | None = None
    backends: dict[str, str] = field(default_factory=dict)
    label: str = "color"
    kubeconfig: str | None = None
    context: str | None = None
    _api: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_spec(cls, spec: AppSpec) -> KubernetesSwitch:
        t = spec.traffic
        if not (t.get("service") or t.get("route")):
            raise ValueError(f"{spec.source}: [traffic] kind = 'kubernetes' needs `service` (selector flip) "
                             f"or `route` (HTTPRoute weights)")
        if not spec.colours:
            raise ValueError(f"{spec.source}: no [colours.*]: nothing to switch between")
        names: dict[str, Any] = t.get("backends", {})
        return cls(colours=tuple(spec.colours), namespace=str(t.get("namespace", "default")),
                   service=t.get("service") or None, route=t.get("route") or None,
                   backends={c: str(names.get(c, f"{spec.name}-{c}")) for c in spec.colours},
                   label=str(t.get("label", "color")), kubeconfig=t.get("kubeconfig") or None,
                   context=t.get("context") or None)

    async def weights(self) -> dict[str, int]:
        if self.route:
            route = await self._call(f"HTTPRoute {self.route}", lambda api: _custom(api).get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.route))
            return self._route_weights(route)
        live = (await self._read_service(self._service())).spec.selector or {}
        return {c: 100 if live.get(self.label) == c else 0 for c in self.colours}

    async def set_weights(self, weights: dict[str, int]) -> None:
        wanted = check_weights(weights, colours=self.colours)
        down = [c for c, w in wanted.items() if w > 0 and not await self.healthy(c)]
        if down:
            raise TrafficError(f"kubernetes: no Ready pod for {', '.join(down)} in namespace {self.namespace}: "
                               f"refusing to send traffic there (nothing changed)")
        if self.route:
            await self._set_route(wanted)
            return
        live = [c for c, w in wanted.items() if w == 100]
        if not live:
            raise ValueError(f"Service {self.service} switches all or nothing (weights 0 or 100); "
                             f"for {wanted} set [traffic] route to an HTTPRoute")
        name, body = self._service(), {"spec": {"selector": {self.label: live[0]}}}
        await self._call(f"Service {name}", lambda api: client.CoreV1Api(api).patch_namespaced_service(
            name, self.namespace, body))

    async def switch(self, colour: str) -> None:
        self._known(colour)
        await self.set_weights({colour: 100})

    async def healthy(self, colour: str) -> bool:
        self._known(colour)
        service = await self._read_service(self.backends[colour] if self.route else self._service())
        selector = {**(service.spec.selector or {}), self.label: colour}
        query = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        pods = await self._call(f"pods {query}", lambda api: client.CoreV1Api(api).list_namespaced_pod(
            self.namespace, label_selector=query))
        return any(_ready(pod) for pod in pods.items)

    async def _set_route(self, wanted: dict[str, int]) -> None:
        what = f"HTTPRoute {self.route}"
        route = await self._call(what, lambda api: _custom(api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.route))
        self._route_weights(route)  # the route must already send to every colour
        rules = copy.deepcopy(route["spec"]["rules"])
        by_name = {name: colour for colour, name in self.backends.items()}
        for rule in rules:
            for ref in rule.get("backendRefs", []):
                if ref.get("name") in by_name:
                    ref["weight"] = wanted[by_name[ref["name"]]]
        body = {"metadata": {"resourceVersion": route["metadata"]["resourceVersion"]}, "spec": {"rules": rules}}
        await self._call(what, lambda api: _custom(api).patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.route, body))

    def _route_weights(self, route: dict[str, Any]) -> dict[str, int]:
        """Each colour's weight in the rules that send to the colours; they must agree."""
        by_name = {name: colour for colour, name in self.backends.items()}
        seen: list[dict[str, int]] = []
        for rule in route.get("spec", {}).get("rules", []):
            refs = {by_name[r["name"]]: int(r.get("weight", 1)) for r in rule.get("backendRefs", [])
                    if r.get("name") in by_name}
            if refs:
                seen.append(refs)
        where = f"HTTPRoute {self.namespace}/{self.route}"
        if not seen:
            raise TrafficError(f"{where} has no rule sending to {', '.join(self.backends.values())}")
        for refs in seen:
            if missing := [f"{c} (Service {self.backends[c]})" for c in self.colours if c not in refs]:
                raise TrafficError(f"{where}: a rule has no backendRef for {', '.join(missing)}")
        if any(refs != seen[0] for refs in seen):
            raise TrafficError(f"{where}: its rules disagree on the colours' weights: {seen}")
        return to_percent(seen[0])

    async def _read_service(self, name: str) -> Any:
        return await self._call(f"Service {name}", lambda api: client.CoreV1Api(api).read_namespaced_service(
            name, self.namespace))

    async def _call(self, what: str, call: Callable[[Any], T]) -> T:
        return await asyncio.to_thread(self._sync_call, what, call)

    def _sync_call(self, what: str, call: Callable[[Any], T]) -> T:
        try:
            return call(self._client())
        except ApiException as exc:
            raise TrafficError(self._explain(what, exc)) from None
        except Urllib3Error as exc:
            host = self._api.configuration.host if self._api else "the API server"
            raise TrafficError(f"kubernetes API at {host} unreachable ({what}): {exc}") from None

    def _explain(self, what: str, exc: ApiException) -> str:
        where = f"kubernetes: {what} in namespace {self.namespace}"
        if exc.status == 404:
            return f"{where} not found (404)"
        if exc.status == 409:
            return f"{where} was changed by someone else since it was read (409 Conflict): nothing written, try again"
        if exc.status in (401, 403):
            return f"{where}: not allowed ({exc.status} {exc.reason}): the credentials need get/patch on it"
        return f"{where}: {exc.status} {exc.reason}: {(exc.body or '')[:300]}"

    def _client(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = _load_client(self.kubeconfig, self.context)
            return self._api

    def _service(self) -> str:
        if not self.service:
            raise ValueError("[traffic] service is not set")
        return self.service

    def _known(self, colour: str) -> None:
        if colour not in self.colours:
            raise ValueError(f"unknown colour {colour!r}: this app has {', '.join(self.colours)}")


def _load_client(kubeconfig: str | None, context: str | None) -> Any:
    try:
        if kubeconfig == "in-cluster" or (kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST")):
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return client.ApiClient(configuration)
        path = str(Path(kubeconfig).expanduser()) if kubeconfig else None
        return config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, persist_config=False)
    except (config.ConfigException, OSError) as exc:
        raise TrafficError(f"kubernetes: cannot load the client configuration "
                           f"({kubeconfig or 'in-cluster or ~/.kube/config'}): {exc}") from None


def _custom(api: Any) -> Any:
    return client.CustomObjectsApi(api)


def _ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
