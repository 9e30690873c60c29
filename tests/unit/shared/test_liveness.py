"""`/healthz` reads the consumers' liveness: pass, warn while retrying, 503 when dead or stuck."""

from __future__ import annotations

from collections.abc import Iterator

import time

import httpx
import pytest
from fastapi import FastAPI

from shared.http import healthz_router
from shared.kafka.liveness import ConsumerLiveness, consumer_health, register, unregister

NOW = 10_000.0


@pytest.fixture
def entry() -> Iterator[ConsumerLiveness]:
    live = register(ConsumerLiveness(group="notifier", topics=["sla.triggers"], stuck_after_s=60, since=NOW - 500,
                                     state="running", last_poll=NOW - 1, last_fetch=NOW - 1, assigned=1))
    yield live
    unregister(live)


async def get_healthz() -> httpx.Response:
    app = FastAPI()
    app.include_router(healthz_router("notifier"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/healthz")


def test_a_polling_consumer_passes(entry: ConsumerLiveness) -> None:
    health = consumer_health(now=NOW)
    assert health.status == "pass" and health.consumers[0]["problem"] is None
    assert health.consumers[0]["last_poll_age_s"] == 1.0


def test_a_loop_that_stopped_polling_is_stuck(entry: ConsumerLiveness) -> None:
    entry.last_poll = NOW - 61
    assert consumer_health(now=NOW).consumers[0]["problem"] == "stuck: no poll for 61 s"
    assert consumer_health(now=NOW).status == "fail"


def test_a_silent_broker_makes_an_assigned_consumer_stuck(entry: ConsumerLiveness) -> None:
    entry.last_fetch = NOW - 90
    assert consumer_health(now=NOW).consumers[0]["problem"] == "stuck: no answer from the broker for 90 s"
    entry.assigned = 0
    assert consumer_health(now=NOW).status == "pass", "no partitions: nothing to fetch, nothing to miss"


def test_retrying_or_running_without_dedupe_is_a_warning(entry: ConsumerLiveness) -> None:
    entry.state = "retrying"
    assert consumer_health(now=NOW).status == "warn"
    entry.state = "running"
    entry.last_dedupe_fallback = NOW - 5
    assert consumer_health(now=NOW).status == "warn"
    entry.last_dedupe_fallback = NOW - 120
    assert consumer_health(now=NOW).status == "pass"


async def test_healthz_answers_503_for_a_dead_consumer(entry: ConsumerLiveness) -> None:
    entry.last_poll = entry.last_fetch = time.monotonic()  # /healthz reads the real clock
    assert (await get_healthz()).status_code == 200
    entry.state = "dead"
    entry.last_error = "commit failed 8 times, last: KafkaTimeoutError"
    r = await get_healthz()
    assert r.status_code == 503
    assert r.json()["status"] == "fail" and r.json()["service"] == "notifier"
    assert r.json()["consumers"][0]["problem"] == "dead: commit failed 8 times, last: KafkaTimeoutError"


async def test_healthz_passes_with_no_consumer() -> None:
    r = await get_healthz()
    assert r.status_code == 200 and r.json() == {"status": "pass", "service": "notifier", "consumers": []}
