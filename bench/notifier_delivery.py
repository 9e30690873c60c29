"""Notifier: TriggerFired -> first notice delivered (issue 14), p50 / p99, on loopback.

A notifier of its own (this checkout's code: real Kafka with a private topic prefix and its consumer group,
real Postgres in a schema of its own, Redis for dedupe) sends the stakeholder notice through the signed
webhook plugin to a local receiver that checks each signature. Each round publishes one TriggerFired (a new
service, so each opens an incident) and stops the clock when the receiver has the verified notice.
Baseline, same run: the notifier's core alone (`open_incident` called directly: the Postgres write and the
signed POST, no Kafka), so the ratio is what the consumer adds.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from pydantic import SecretStr

from bench.report import record
from services.notifier.app import create_app
from services.notifier.channel_plugins import verify_notice
from services.notifier.policy import NotifierPolicy, load_policy
from services.notifier.settings import DEFAULT_POLICY, ChannelSecrets, NotifierSettings
from shared.auth import AuthSettings
from shared.events import TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.topics import create_topics

ROUNDS = 30
SECRET = "whsec_bench"


class Receiver:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.bad = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in head.split("\r\n")[1:]) if k}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if verify_notice(secret=SECRET, headers=headers, body=body, now=datetime.now(UTC)):
            service = json.loads(body)["incident"]["service"]
            self.seen.setdefault(service, time.perf_counter())
        else:
            self.bad += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def fired(service: str) -> TriggerFired:
    return TriggerFired(service=service, trigger="error_rate_high", episode_id=f"ep-{service}", value=0.2,
                        threshold=0.05, window_seconds=30, time=datetime.now(UTC))


async def _wait(rx: Receiver, service: str, t0: float) -> float:
    while service not in rx.seen:
        if time.perf_counter() - t0 > 30:
            raise TimeoutError(f"no notice for {service}")
        await asyncio.sleep(0.001)
    return rx.seen[service] - t0


def _policy(hook: str) -> NotifierPolicy:
    raw = load_policy(DEFAULT_POLICY).model_dump()
    raw["channels"]["stakeholder"] = {"kind": "webhook", "url": hook, "recipients": ["stakeholders"]}
    return NotifierPolicy.model_validate(raw)


async def main() -> None:
    kafka = KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    await create_topics(kafka, partitions=1)
    dsn = os.environ.get("POSTGRES_DSN", "postgresql://127.0.0.1:5432/safeguard")
    rx = Receiver()
    server = await asyncio.start_server(rx.handle, "127.0.0.1", 0)
    schema, tag = f"notifier_bench{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    settings = NotifierSettings(
        kafka=kafka, db_schema=schema, group_id=f"bench-notifier-{tag}", auth=AuthSettings(env="local"),
        postgres=PostgresSettings(dsn=SecretStr(dsn)),
        redis=RedisSettings(url=SecretStr(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))),
        channels={"stakeholder": ChannelSecrets(secret=SecretStr(SECRET))})
    app = create_app(settings, policy=_policy(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"))
    try:
        async with app.router.lifespan_context(app), KafkaPublisher.start(kafka, source="/bench") as pub:
            svc = app.state.notifier
            await pub.publish(fired(f"warm{tag}"))  # the consumer joins its group
            await _wait(rx, f"warm{tag}", time.perf_counter())
            core, kafka_path = [], []
            for i in range(ROUNDS):
                name = f"core{tag}{i}"
                t0 = time.perf_counter()
                await svc.open_incident(fired(name))
                core.append(await _wait(rx, name, t0))
                name = f"kafka{tag}{i}"
                t0 = time.perf_counter()
                await pub.publish(fired(name))
                kafka_path.append(await _wait(rx, name, t0))
        base = statistics.median(core)
        for label, xs in (("core only (baseline: open_incident)", core),
                          ("TriggerFired on Kafka -> notice delivered", kafka_path)):
            print(f"{label:<44} p50 {statistics.median(xs) * 1000:7.1f} ms  p99 {pct(xs, 0.99) * 1000:7.1f} ms"
                  f"  ({statistics.median(xs) / base:4.1f}x baseline, n={len(xs)})")
        print(f"signed webhook: {len(rx.seen)} notices verified, {rx.bad} refused by the receiver")
        record(f"TriggerFired on Kafka -> notice delivered, p50 of {len(kafka_path)}",
               statistics.median(kafka_path) * 1000, "ms", baseline="open_incident alone (no Kafka), p50",
               baseline_value=base * 1000, lower_is_better=True, note=f"p99 {pct(kafka_path, 0.99) * 1000:.1f} ms")
    finally:
        server.close()
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
