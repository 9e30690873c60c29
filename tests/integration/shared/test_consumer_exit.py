"""A consumer that gives up ends its process with a non-zero status (supervisord / Docker restart it),
after a clean shutdown, instead of dying as a task inside a web process that still answers /healthz."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from aiokafka.admin import NewTopic

from shared.kafka.admin import kafka_admin
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
from shared.topics import SLA_TRIGGERS, dlq
from tests.faults import free_port

ROOT = Path(__file__).resolve().parents[3]


async def _poison_with_a_refusing_dlq(settings: KafkaSettings) -> None:
    topic = settings.topic_prefix + SLA_TRIGGERS
    async with kafka_admin(settings.client_kwargs()) as admin:
        await admin.create_topics([NewTopic(dlq(topic), 1, 1, topic_configs={"max.message.bytes": "16"})])
    async with KafkaPublisher.start(settings, source="/safeguard/tests") as pub:
        await pub.publish_raw(topic, key=b"svc", value=b"{not json", headers=[])


def _healthz(port: int) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.TransportError:
        return None


async def test_a_consumer_that_gives_up_ends_its_process_with_status_70(
    kafka_settings: KafkaSettings, redis_url: str
) -> None:
    await _poison_with_a_refusing_dlq(kafka_settings)
    port = free_port()
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_settings.bootstrap_servers,
               KAFKA_TOPIC_PREFIX=kafka_settings.topic_prefix, REDIS_URL=redis_url,
               KAFKA_CONSUMER_ATTEMPTS="4", KAFKA_CONSUMER_BACKOFF_INITIAL_S="2")
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.shared.giving_up_service", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    statuses: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the process did not exit within 60 s"
            r = await asyncio.to_thread(_healthz, port)
            if r is not None:
                statuses.append(r.json()["status"])
            await asyncio.sleep(0.2)
        out = proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 70, out[-3000:]  # EX_SOFTWARE (shared.tasks.EXIT_SOFTWARE)
    assert "warn" in statuses, f"while retrying, /healthz says warn: {statuses}"
    assert "CRITICAL:shared.kafka.consumer:consumer " in out and "gave up: DLQ send failed 4 times" in out, out[-3000:]
    assert "Application shutdown complete" in out, "the process went down cleanly (lifespan closed)"
