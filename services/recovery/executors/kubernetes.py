"""Restart the pods of an instance by deleting them, one at a time, with the official `kubernetes` client:
their Deployment (ReplicaSet) starts a replacement, and the next pod goes only once the replacement is
Ready. Client loading and error wording are deploy's (`deploy.traffic.kubernetes.KubernetesSwitch`).

`Target.program` is the pods' label selector (`app=demo,color=blue`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kubernetes import client

from deploy.traffic.kubernetes import KubernetesSwitch
from deploy.traffic.weights import TrafficError
from services.recovery.executors.base import ExecutorError, Restarted, Target, answers

__all__ = ["KubernetesExecutor"]


def _ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions if pod.status else None) or [])


class KubernetesExecutor:
    name = "kubernetes"

    def __init__(self, *, namespace: str = "default", kubeconfig: str | None = None, context: str | None = None,
                 ready_timeout_s: float = 120, poll_s: float = 0.5) -> None:
        self.namespace, self.ready_timeout_s, self.poll_s = namespace, ready_timeout_s, poll_s
        self.api = KubernetesSwitch(colours=(), namespace=namespace, kubeconfig=kubeconfig, context=context)

    def describe(self, target: Target) -> str:
        return f"delete the pods {target.program} in namespace {self.namespace}, one at a time"

    async def _pods(self, selector: str) -> list[Any]:
        found = await self.api._call(f"pods {selector}", lambda c: client.CoreV1Api(c).list_namespaced_pod(
            self.namespace, label_selector=selector))
        return list(found.items)

    async def _replace(self, selector: str, name: str, known: set[str]) -> str:
        """Delete pod `name`; the name of its Ready replacement (a pod not in `known`)."""
        await self.api._call(f"pod {name}", lambda c: client.CoreV1Api(c).delete_namespaced_pod(name, self.namespace))
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            new = [p.metadata.name for p in await self._pods(selector) if p.metadata.name not in known and _ready(p)]
            if new:
                return str(new[0])
            await asyncio.sleep(self.poll_s)
        raise ExecutorError(f"no Ready pod replaced {self.namespace}/{name} ({selector}) within "
                            f"{self.ready_timeout_s:.0f}s")

    async def restart(self, target: Target) -> Restarted:
        t0 = time.monotonic()
        try:
            old = [p.metadata.name for p in await self._pods(target.program) if _ready(p)]
            if not old:
                raise ExecutorError(f"no Ready pod matches {target.program} in namespace {self.namespace}")
            known, new = set(old), []
            for name in old:
                new.append(await self._replace(target.program, name, known))
                known.add(new[-1])
        except TrafficError as exc:
            raise ExecutorError(str(exc)) from None
        if not await answers(target.health_url, timeout_s=self.ready_timeout_s):
            raise ExecutorError(f"{target.instance} did not answer {target.health_url} after its pods were replaced")
        return Restarted(instance=target.instance, before=f"pods {', '.join(old)}", after=f"pods {', '.join(new)}",
                         answered_s=time.monotonic() - t0)
