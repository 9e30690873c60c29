"""The traffic switch: which colour of a blue/green app gets new requests, as a port.

`make_traffic(spec)` reads the app description's `[traffic]` table and gives the implementation it
names: `kind = "haproxy"` (the runtime API on HAProxy's admin socket, deploy/traffic/haproxy.py) or
`kind = "kubernetes"` (a Service's selector or an HTTPRoute's weights, deploy/traffic/kubernetes.py).
Weights are percents of new requests per colour; in-flight requests finish where they started.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from deploy.app import AppSpec
from deploy.traffic.weights import TrafficError, check_weights, to_percent

__all__ = ["TrafficError", "TrafficSwitch", "check_weights", "make_traffic", "to_percent"]

KINDS = ("haproxy", "kubernetes")


@runtime_checkable
class TrafficSwitch(Protocol):
    """Where new requests of one app go. Raises ValueError for bad input, TrafficError when the
    switch cannot be read or changed (unreachable, unknown backend, a colour that is down)."""

    async def weights(self) -> dict[str, int]:
        """Colour -> percent of new requests; sums to 100, or every colour 0 when none is routed."""
        ...

    async def set_weights(self, weights: dict[str, int]) -> None:
        """E.g. {"blue": 90, "green": 10}: known colours, 0..100 each, summing to 100 (a colour left
        out gets 0). Every colour given a share must be healthy, else TrafficError and no change."""
        ...

    async def switch(self, colour: str) -> None:
        """All new requests to `colour`, none to the others."""
        ...

    async def healthy(self, colour: str) -> bool:
        """The switch's own view of the colour: HAProxy's health check says UP / a pod is Ready."""
        ...


def make_traffic(spec: AppSpec) -> TrafficSwitch:
    """The implementation `[traffic] kind` names in the app description."""
    kind = spec.traffic.get("kind")
    if kind == "haproxy":
        from deploy.traffic.haproxy import HaproxySwitch

        return HaproxySwitch.from_spec(spec)
    if kind == "kubernetes":
        from deploy.traffic.kubernetes import KubernetesSwitch

        return KubernetesSwitch.from_spec(spec)
    raise ValueError(f"{spec.source}: [traffic] kind = {kind!r}: expected one of {', '.join(KINDS)}")
