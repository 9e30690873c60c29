"""SLA processor benchmarks (loopback Kafka, bounded).

1. Throughput: N RequestsObserved records already on a topic, read by a bare aiokafka
   consumer (the Python ceiling) and then by the SLA processor (parse, windows, tables with
   changelogs, budgets), in the same run. Figures: events/s and the ratio.
2. Detection latency: services report every wall-clock second (as the SDK does); each turns
   20 % errors at its own second; latency = TriggerFired read from the topic minus the
   start of the first bad second. Figures: p50 / p99 with the default policy.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer

from bench.report import record
from services.sla.app import create_app
from services.sla.settings import SlaSettings
from shared import topics
from shared.events import RequestsObserved, TriggerFired
from shared.histogram import LatencySketch
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings

N_EVENTS = 20_000
SERVICES = 30
LATENCY_SERVICES = 24


def _sketch() -> tuple[float, dict[str, int]]:
    s = LatencySketch.of([20, 35, 50, 80, 120, 300, 900])
    return s.total_ms, s.to_wire()


async def _topics(prefix: str) -> None:
    names = [topics.TELEMETRY_REQUESTS, topics.TELEMETRY_PAGELOADS, topics.HEALTH_CHECKS, topics.SLA_TRIGGERS, topics.SLA_BUDGETS]
    await topics.create_topics(KafkaSettings(topic_prefix=prefix), names=names)


async def _bare(topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(topic, **KafkaSettings().client_kwargs(), group_id=f"bare-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        seen, t0 = 0, time.perf_counter()
        while seen < n:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            seen += sum(len(r) for r in batches.values())
        return n / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


async def _start(settings: KafkaSettings, app_id: str):  # type: ignore[no-untyped-def]
    sla = create_app(SlaSettings(app_id=app_id, kafka=settings, policy_file="config/sla.yaml", web_enabled=False,
                                 data_dir="/tmp/safeguard-sla-bench"))
    await sla.app.start()
    while not sla.app.consumer.assignment() or not sla.app.tables.recovery.completed.is_set():
        await asyncio.sleep(0.02)
    return sla


async def throughput() -> None:
    settings = KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:6]}.")
    await _topics(settings.topic_prefix)
    source = settings.topic_prefix + topics.TELEMETRY_REQUESTS
    total_ms, wire = _sketch()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=N_EVENTS // SERVICES + 10)
    async with KafkaPublisher.start(settings, source="/safeguard/bench") as pub:
        sends = [pub.publish(RequestsObserved(service=f"svc-{i % SERVICES}", instance="i-1",
                                              window_start=t0 + timedelta(seconds=i // SERVICES), count=50,
                                              errors=1 if i % 7 == 0 else 0, latency_sum_ms=total_ms * 50 / 7,
                                              latency_buckets=wire))
                 for i in range(N_EVENTS)]
        for k in range(0, len(sends), 1000):
            await asyncio.gather(*sends[k:k + 1000])
    bare = await _bare(source, N_EVENTS)
    sla = await _start(settings, f"bench-{uuid.uuid4().hex[:6]}")
    try:
        t = time.perf_counter()
        while sla.counters["sla_events_total"][source] < N_EVENTS:
            await asyncio.sleep(0.01)
        processed = N_EVENTS / (time.perf_counter() - t)
    finally:
        await sla.app.stop()
    print(f"throughput: {N_EVENTS} RequestsObserved, {SERVICES} services, 3 partitions")
    print(f"  bare aiokafka consumer : {bare:10,.0f} events/s")
    print(f"  sla processor (Faust)  : {processed:10,.0f} events/s")
    print(f"  ratio processor / bare : {processed / bare:10.3f}")
    record("SLA processor (Faust) throughput", processed, "events/s", baseline="bare aiokafka consumer",
           baseline_value=bare)


async def detection() -> None:
    settings = KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:6]}.")
    await _topics(settings.topic_prefix)
    sla = await _start(settings, f"bench-{uuid.uuid4().hex[:6]}")
    fired_at: dict[str, float] = {}
    consumer = AIOKafkaConsumer(settings.topic_prefix + topics.SLA_TRIGGERS, **settings.client_kwargs(),
                                auto_offset_reset="earliest", group_id=f"lat-{uuid.uuid4().hex[:6]}")
    await consumer.start()

    async def watch() -> None:
        async for record in consumer:
            if b'"sla.trigger_fired"' in record.value and b'"error_rate_high"' in record.value:
                fired_at.setdefault(TriggerFired.model_validate_json(record.value).service, time.time())

    watcher = asyncio.create_task(watch())
    total_ms, wire = _sketch()
    start = int(time.time()) + 1
    bad_from = {f"lat-{i}": start + 6 + i % 6 for i in range(LATENCY_SERVICES)}  # staggered first bad second
    try:
        async with KafkaPublisher.start(settings, source="/safeguard/bench") as pub:
            tick = start
            while len(fired_at) < LATENCY_SERVICES and tick < start + 40:
                await asyncio.sleep(max(0.0, tick + 1 - time.time()))  # second `tick` is over: report it
                window = datetime.fromtimestamp(tick, UTC)
                await asyncio.gather(*(pub.publish(RequestsObserved(
                    service=svc, instance="i-1", window_start=window, count=100,
                    errors=20 if tick >= bad else 0, latency_sum_ms=total_ms * 100 / 7, latency_buckets=wire))
                    for svc, bad in bad_from.items()))
                tick += 1
            await asyncio.sleep(1.0)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await consumer.stop()
        await sla.app.stop()
    latencies = sorted(fired_at[s] - bad_from[s] for s in fired_at)
    missed = LATENCY_SERVICES - len(latencies)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(f"detection latency (error rate 0 % -> 20 %, default policy: 5 s window, 1 s hold, 1 s SDK reports):")
    print(f"  episodes {len(latencies)} (missed {missed}); p50 {p50:.2f} s, p99 {p99:.2f} s, max {latencies[-1]:.2f} s; target < 5 s")
    record(f"detection latency, p99 of {len(latencies)} (missed {missed})", p99, "s", baseline="the 5 s window",
           baseline_value=5.0, lower_is_better=True, limit=5.0, spread=(latencies[0], latencies[-1]),
           note=f"p50 {p50:.2f} s")


async def main() -> None:
    await throughput()
    await detection()
