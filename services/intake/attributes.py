"""OTLP attribute lists as plain values, and who sent a ResourceMetrics (service.name, instance, pid)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["App", "Scalar", "attrs_of", "identify", "status_code"]

Scalar = str | bool | int | float | None
_STATUS_KEYS = ("http.response.status_code", "http.status_code")


def _value(v: AnyValue) -> Scalar:
    kind = v.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(v, kind)  # type: ignore[no-any-return]
    return None if kind is None else str(getattr(v, kind))


def attrs_of(kvs: Iterable[KeyValue]) -> dict[str, Scalar]:
    return {kv.key: _value(kv.value) for kv in kvs}


@dataclass(frozen=True, slots=True)
class App:
    service: str
    instance: str
    pid: int


def identify(attrs: dict[str, Scalar]) -> App | None:
    """`service.name` names the app (None without one); `service.instance.id` the instance, else
    `host.name/process.pid` (whichever are sent), else "default"."""
    service = attrs.get("service.name")
    if not isinstance(service, str) or not service.strip():
        return None
    pid = attrs.get("process.pid")
    pid_int = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid >= 0 else 0
    instance = attrs.get("service.instance.id")
    if not isinstance(instance, str) or not instance:
        parts = [str(p) for p in (attrs.get("host.name"), pid_int or None) if p]
        instance = "/".join(parts) or "default"
    return App(service=service.strip(), instance=instance, pid=pid_int)


def status_code(attrs: dict[str, Scalar]) -> int | None:
    """The HTTP response status of a data point (new or old semantic conventions); None when absent."""
    for key in _STATUS_KEYS:
        raw = attrs.get(key)
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.isdigit():
            return int(raw)
    return None
