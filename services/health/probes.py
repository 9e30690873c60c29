"""Outbound edge: one probe per target kind. Each returns a `ProbeResult`, never raises."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil

from services.health.config import (
    HttpTarget, KafkaTarget, PostgresTarget, ProcessTarget, RedisTarget, TcpTarget,
)
from services.health.service import ProbeResult

__all__ = ["Prober", "Defaults"]


@dataclass(frozen=True)
class Defaults:
    postgres_dsn: str
    redis_url: str
    kafka_bootstrap: str
    kafka_auth: dict[str, Any] = field(default_factory=dict)  # security_protocol, sasl_* (KafkaSettings.client_kwargs)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def _latency_status(latency_ms: float, warn_ms: float | None) -> str:
    return "warn" if warn_ms is not None and latency_ms > warn_ms else "pass"


def _dig(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            return None
        body = body[part]
    return body


class Prober:
    """Holds the clients probes reuse (one httpx client, one Redis client per URL)."""

    def __init__(self, defaults: Defaults, *, http: httpx.AsyncClient | None = None) -> None:
        self.defaults = defaults
        # no keep-alive: a probe every 30 s would mostly reuse a connection the server (HAProxy: 5 s) is
        # closing, and fail with "Server disconnected"; a fresh connection is also what a health check tests
        self.http = http or httpx.AsyncClient(follow_redirects=False,
                                              limits=httpx.Limits(max_keepalive_connections=0))
        self._redis: dict[str, Any] = {}
        self.handlers: dict[str, Callable[[Any], Awaitable[ProbeResult]]] = {
            "http": self.http_probe, "tcp": self.tcp_probe, "postgres": self.postgres_probe,
            "redis": self.redis_probe, "kafka": self.kafka_probe, "process": self.process_probe,
        }

    async def aclose(self) -> None:
        await self.http.aclose()
        for client in self._redis.values():
            await client.aclose()

    async def probe(self, target: Any, timeout_s: float) -> ProbeResult:
        start = time.perf_counter()
        try:
            return await asyncio.wait_for(self.handlers[target.kind](target), timeout_s)
        except TimeoutError:
            return ProbeResult("fail", _ms(start), None, "ms", f"timed out after {timeout_s:g} s")
        except Exception as exc:  # noqa: BLE001 - any probe error is a failed check, with its reason
            return ProbeResult("fail", _ms(start), None, "ms", f"{type(exc).__name__}: {str(exc)[:200]}")

    async def http_probe(self, t: HttpTarget) -> ProbeResult:
        start = time.perf_counter()
        r = await self.http.request(t.method, t.url)
        latency = _ms(start)
        if r.status_code not in t.expect_status:
            return ProbeResult("fail", latency, latency, "ms", f"HTTP {r.status_code}, expected {t.expect_status}")
        if t.body_contains is not None and t.body_contains not in r.text:
            return ProbeResult("fail", latency, latency, "ms", f"body does not contain {t.body_contains!r}")
        if t.json_field is not None:
            try:
                found = _dig(r.json(), t.json_field)
            except ValueError:
                return ProbeResult("fail", latency, latency, "ms", "body is not JSON")
            if found != t.json_equals:
                return ProbeResult("fail", latency, latency, "ms", f"{t.json_field} is {found!r}, expected {t.json_equals!r}")
        status = _latency_status(latency, t.warn_latency_ms or 2000.0)
        return ProbeResult(status, latency, latency, "ms", "slow response" if status == "warn" else "")

    async def tcp_probe(self, t: TcpTarget) -> ProbeResult:
        start = time.perf_counter()
        _, writer = await asyncio.open_connection(t.host, t.port)
        latency = _ms(start)
        writer.close()
        await writer.wait_closed()
        return ProbeResult(_latency_status(latency, t.warn_latency_ms), latency, latency, "ms", "")

    async def postgres_probe(self, t: PostgresTarget) -> ProbeResult:
        import asyncpg

        dsn = os.environ.get(t.dsn_env, "") if t.dsn_env else self.defaults.postgres_dsn
        start = time.perf_counter()
        conn = await asyncpg.connect(dsn, timeout=t.timeout_seconds or 5.0)
        try:
            await conn.fetchval(t.query)
        finally:
            await conn.close()
        latency = _ms(start)
        status = _latency_status(latency, t.warn_latency_ms)
        return ProbeResult(status, latency, latency, "ms", "slow query" if status == "warn" else "")

    async def redis_probe(self, t: RedisTarget) -> ProbeResult:
        import redis.asyncio as aioredis

        url = os.environ.get(t.url_env, "") if t.url_env else self.defaults.redis_url
        client = self._redis.get(url)
        if client is None:
            client = self._redis[url] = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        start = time.perf_counter()
        await client.ping()
        latency = _ms(start)
        return ProbeResult(_latency_status(latency, t.warn_latency_ms), latency, latency, "ms", "")

    async def kafka_probe(self, t: KafkaTarget) -> ProbeResult:
        from aiokafka.client import AIOKafkaClient

        client = AIOKafkaClient(**self.defaults.kafka_auth,
                                bootstrap_servers=t.bootstrap_servers or self.defaults.kafka_bootstrap,
                                request_timeout_ms=int((t.timeout_seconds or 5.0) * 1000))
        start = time.perf_counter()
        try:
            await client.bootstrap()
            brokers = len(client.cluster.brokers())
        finally:
            await client.close()
        latency = _ms(start)
        if brokers == 0:
            return ProbeResult("fail", latency, 0, "brokers", "no broker in the metadata")
        return ProbeResult(_latency_status(latency, t.warn_latency_ms), latency, brokers, "brokers", "")

    async def process_probe(self, t: ProcessTarget) -> ProbeResult:
        start = time.perf_counter()
        found = await asyncio.to_thread(_processes_matching, t.cmdline_contains)
        latency = _ms(start)
        if not found:
            return ProbeResult("fail", latency, None, "percent", f"no process matches {t.cmdline_contains!r}")
        worst = max(found)
        status = "warn" if worst > t.max_memory_percent else "pass"
        message = f"{len(found)} process(es)" + (f"; memory {worst:.1f}% > {t.max_memory_percent:g}%"
                                                 if status == "warn" else "")
        return ProbeResult(status, latency, round(worst, 2), "percent", message)


def _processes_matching(needle: str) -> list[float]:
    me = os.getpid()
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "memory_percent"]):
        cmd = " ".join(p.info.get("cmdline") or ())
        if p.info["pid"] != me and needle in cmd:
            out.append(float(p.info.get("memory_percent") or 0.0))
    return out
