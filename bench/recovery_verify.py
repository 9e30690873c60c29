"""Recovery: action -> effect verified (issue 14), p50 / p99 per action, on loopback.

The app is built from the real SDK pieces (command listener, breaker registry, guarded Postgres pool,
stats reporter every 0.2 s) on real Kafka (a private topic prefix); restarts go through a private
supervisord (two tiny programs, one at a time); flags are killed in an in-process flags app (own schema)
and verified through OFREP. Each figure runs from `recover_from_trigger` (the TriggerFired in hand) to
the RecoveryActionVerified. Baseline, same run: one health.checks report from publish to recovery's
watch (the floor of every event-based verification). The pool figure is bounded by the stats interval
(a report every 0.2 s here; the SDK's default is 5 s).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from pydantic import SecretStr

from bench.report import record, runbook_limit
from sdk.breakers import BreakerConfig, BreakerRegistry, GuardedPool
from sdk.commands import CommandHandlers, CommandListener
from sdk.stats import ProcessStatsReporter
from services.flags.app import create_app as flags_app
from services.flags.settings import FlagsSettings
from services.recovery.executors import Target
from services.recovery.executors.supervisord import SupervisordExecutor
from services.recovery.flags_client import HttpFlagsClient
from services.recovery.health_watch import HealthWatch
from services.recovery.operator import Operator
from services.recovery.policy import ActionRule, RecoveryPolicy, Triggers
from services.recovery.repository import MemoryAuditStore
from services.recovery.service import RecoveryService
from services.recovery.verify import EffectChecks, OfrepProbe
from shared.auth import AuthSettings
from shared.events import Event, ProcessStatsReported, RecoveryActionVerified, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing import InMemoryPublisher
from shared.topics import create_topics

ROUNDS = 10
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-admin-token"
POLICY = RecoveryPolicy(cooldown=0, max_attempts=10, triggers=Triggers(
    latency_high=ActionRule(action="open_circuit_breaker", breaker="postgres", duration=0.3)))
TINY = ("import os, sys\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "class H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200)\n"
        "        self.send_header('Content-Length', '0')\n        self.end_headers()\n"
        "    def log_message(self, *a):\n        pass\n"
        "HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n")


class Tee(InMemoryPublisher):
    def __init__(self, kafka: KafkaPublisher) -> None:
        super().__init__()
        self.kafka = kafka

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        await super().publish(event, topic=topic)
        await self.kafka.publish(event)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def show(name: str, xs: list[float], base: float) -> None:
    p50, p99 = statistics.median(xs), pct(xs, 0.99)
    print(f"{name:<40} p50 {p50 * 1000:8.1f} ms  p99 {p99 * 1000:8.1f} ms  ({p50 / base:5.1f}x baseline, n={len(xs)})")
    record(f"{name}, p50 of {len(xs)}", p50 * 1000, "ms", baseline="health report publish -> watch, p50",
           baseline_value=base * 1000, lower_is_better=True, note=f"p99 {p99 * 1000:.1f} ms")
    runbook_limit(f"{name}, p99", p99, limit_s=300, what="auto-recovery within 5 min")


async def rounds(svc: RecoveryService, pub: InMemoryPublisher, fired: Callable[[int], TriggerFired],
                 before: Callable[[], Awaitable[None]] | None = None) -> list[float]:
    out = []
    for i in range(ROUNDS):
        if before is not None:
            await before()
        n = len(pub.of_type(RecoveryActionVerified))
        t0 = time.perf_counter()
        await svc.recover_from_trigger(fired(i))
        await svc.operator.settled()
        if len(pub.of_type(RecoveryActionVerified)) > n:
            out.append(time.perf_counter() - t0)
        await asyncio.sleep(0.4)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def supervisord(d: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    (d / "tiny.py").write_text(TINY)
    ports = {"tiny-a": free_port(), "tiny-b": free_port()}
    progs = "".join(f"[program:{n}]\ncommand={sys.executable} {d / 'tiny.py'} {p}\nstartsecs=0\n" for n, p in ports.items())
    (d / "sv.conf").write_text(f"[unix_http_server]\nfile={d / 's.sock'}\n[supervisord]\nnodaemon=true\n"
                               f"logfile={d / 'sv.log'}\npidfile={d / 'sv.pid'}\nchildlogdir={d}\n"
                               "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
                               "supervisor.rpcinterface:make_main_rpcinterface\n" + progs)
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "supervisord"), "-c", str(d / "sv.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, ports


async def main() -> None:
    kafka = KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    dsn = os.environ.get("POSTGRES_DSN", "postgresql://127.0.0.1:5432/safeguard")
    await create_topics(kafka, partitions=1)
    service, instance, tmp = "bench", "bench-blue", Path(tempfile.mkdtemp(prefix="rv", dir="/tmp"))
    proc, ports = supervisord(tmp)
    fl = FlagsSettings(db_schema=f"flags_bench{uuid.uuid4().hex[:6]}", cache_prefix=f"bench{uuid.uuid4().hex[:6]}:",
                       kafka=kafka, postgres=PostgresSettings(dsn=SecretStr(dsn)),
                       redis=RedisSettings(url=SecretStr(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))),
                       auth=AuthSettings(env="local", admin_token=SecretStr(TOKEN)), rate_limit="10000/second",
                       write_limit="10000/second", journal_path=str(tmp / "pending-off.jsonl"), sync_port=0)
    try:
        async with AsyncExitStack() as stack:
            pk = await stack.enter_async_context(KafkaPublisher.start(kafka, source="/bench"))
            registry = BreakerRegistry(service=service, instance=instance)
            db = GuardedPool(dsn=dsn, breaker=registry.breaker("postgres", BreakerConfig.for_database()), max_size=2)
            await stack.enter_async_context(db)
            await stack.enter_async_context(registry.running(pk))
            await stack.enter_async_context(ProcessStatsReporter(
                service=service, instance=instance, interval_s=0.2, pools=lambda: [db.stats()],
                breakers=registry.states).running(pk))
            listener = await stack.enter_async_context(CommandListener(handlers=CommandHandlers(
                service=service, instance=instance, pools={"postgres": db}, breakers=registry), kafka=kafka).running())
            watch = await stack.enter_async_context(HealthWatch().reading(kafka))
            app = flags_app(fl)
            await stack.enter_async_context(app.router.lifespan_context(app))
            http = await stack.enter_async_context(httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 5555)), base_url="http://flags"))
            await listener.consumer.wait_assigned()
            await asyncio.wait_for(watch.ready.wait(), 30)
            await asyncio.sleep(1.0)

            base = []
            for _ in range(ROUNDS):
                since, t0 = datetime.now(UTC), time.perf_counter()
                await pk.publish(ProcessStatsReported(service="floor", instance="x", pid=1, rss_bytes=1,
                                                      memory_limit_bytes=1, memory_percent=1))
                await watch.wait_for(lambda e: e.service == "floor", since=since, timeout_s=10)
                base.append(time.perf_counter() - t0)
            floor = statistics.median(base)

            pub = Tee(pk)
            probe = OfrepProbe(http, flags_url="http://flags", token=SecretStr(TOKEN))
            op = Operator(executor=SupervisordExecutor(socket=tmp / "s.sock", ready_timeout_s=10), watch=watch,
                          targets={service: [Target(instance=n, program=n, health_url=f"http://127.0.0.1:{p}/")
                                             for n, p in ports.items()]},
                          verifier=EffectChecks(watch=watch, flags=probe, timeout_s=20, poll_s=0.02))
            svc = RecoveryService(policy=POLICY, publisher=pub, audit=MemoryAuditStore(), operator=op,
                                  flags=HttpFlagsClient(http, flags_url="http://flags", token=SecretStr(TOKEN)))

            def fired(trigger: str, inst: str | None = None) -> Callable[[int], TriggerFired]:
                return lambda i: TriggerFired(service=service, trigger=trigger, episode_id=f"{trigger}-{inst}-{i}", value=1,
                                              threshold=0, window_seconds=5, instance=inst)

            async def lose_pool() -> None:
                db.held_down = True
                await db.close()
                await asyncio.sleep(0.3)

            async def new_flag() -> None:
                await http.post("/api/flags", json={"key": f"beta-{uuid.uuid4().hex[:8]}", "state": "ENABLED",
                                                    "new": True}, headers={"Authorization": f"Bearer {TOKEN}"})

            print(f"{'baseline: report publish -> watch':<40} p50 {floor * 1000:8.1f} ms  p99 {pct(base, .99) * 1000:8.1f} ms")
            show("open_circuit_breaker -> breaker open", await rounds(svc, pub, fired("latency_high")), floor)
            show("restart_connection_pool -> connected", await rounds(svc, pub, fired("db_connection_lost"),
                                                                      lose_pool), floor)
            show("disable_new_features -> OFREP off", await rounds(svc, pub, fired("error_rate_high"), new_flag), floor)
            show("restart_process (supervisord, 1 prog)", await rounds(svc, pub, fired("memory_high", "tiny-a")), floor)
            show("restart_process (supervisord, 2 in turn)", await rounds(svc, pub, fired("memory_high")), floor)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{fl.db_schema}" CASCADE')
        finally:
            await conn.close()
