"""What the chaos run watches: the topics (read back on its own, no consumer group) and health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx

from shared import topics
from shared.events import RequestsObserved, TriggerCleared, TriggerFired
from shared.kafka.codec import decode
from shared.tasks import background

__all__ = ["TopicWatch", "TriggerSeen", "HealthWatch", "seq_id", "seq_of"]

log = logging.getLogger(__name__)


def seq_id(*, run: int, instance: int, seq: int) -> UUID:
    """The event id that carries `(instance, seq)`: the run in the high 64 bits, so ids never repeat."""
    return UUID(int=(run << 64) | (instance << 32) | seq)


def seq_of(event_id: UUID, *, run: int) -> tuple[int, int] | None:
    """`(instance, seq)` of an id made by `seq_id` in this run, None for any other event."""
    if event_id.int >> 64 != run:
        return None
    return (event_id.int >> 32) & 0xFFFFFFFF, event_id.int & 0xFFFFFFFF


@dataclass(frozen=True)
class TriggerSeen:
    at: float
    kind: str  # fired | cleared
    service: str
    trigger: str
    episode: str


@dataclass
class TopicWatch:
    """Reads `telemetry.requests` and `sla.triggers` from their end at start, without a group:
    every copy of every chaos event is counted (duplicates included), and every trigger."""

    bootstrap: str
    run: int
    prefix: str = ""
    copies: Counter[tuple[int, int]] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)  # service -> requests in the topic (every copy)
    triggers: list[TriggerSeen] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TopicWatch]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(**_login(self.bootstrap), enable_auto_commit=False,
                                    client_id="safeguard-chaos-watch")
        await consumer.start()
        names = [self.prefix + topics.TELEMETRY_REQUESTS, self.prefix + topics.SLA_TRIGGERS]
        parts = [TopicPartition(t, p) for t, n in (await _partitions(self.bootstrap, names)).items() for p in range(n)]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the end offsets now, before anything is produced
            await consumer.position(tp)
        try:
            async with background(self._read(consumer), name="chaos-topic-watch"):
                yield self
        finally:
            await consumer.stop()

    async def _read(self, consumer: object) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - the broker is away: keep reading when it is back
                log.exception("topic watch: fetch failed; retrying")
                await asyncio.sleep(0.5)
                continue
            for tp, records in batches.items():
                for record in records:
                    try:
                        self._take(tp.topic, record.value)
                    except Exception:  # noqa: BLE001 - one odd record must not blind the count
                        log.exception("topic watch: cannot read a record of %s", tp.topic)

    def _take(self, topic: str, value: bytes | None) -> None:
        try:
            event = decode(topic.removeprefix(self.prefix), value)
        except ValueError:
            return
        if isinstance(event, RequestsObserved):
            key = seq_of(event.id, run=self.run)
            if key is not None:
                self.copies[key] += 1
                self.requests[event.service] += event.count
        elif isinstance(event, TriggerFired | TriggerCleared):
            kind = "fired" if isinstance(event, TriggerFired) else "cleared"
            self.triggers.append(TriggerSeen(time.time(), kind, event.service, event.trigger, str(event.episode_id)))


def _login(bootstrap: str) -> dict[str, Any]:
    """aiokafka arguments with the environment's Kafka login (`make chaos` loads .stack/env: the admin's)."""
    from shared.settings import KafkaSettings

    return KafkaSettings(bootstrap_servers=bootstrap).client_kwargs()


async def _partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    from shared.kafka.admin import kafka_admin

    async with kafka_admin(_login(bootstrap)) as admin:
        described = await admin.describe_topics(names)
    found = {d["topic"]: len(d["partitions"]) for d in described if d.get("partitions")}
    missing = [n for n in names if not found.get(n)]
    if missing:
        raise RuntimeError(f"topic(s) {missing} not found: run `python -m shared.topics create`")
    return found


@dataclass
class HealthWatch:
    """Polls `/api/health` (front door) and every program's own `/healthz` twice a second."""

    front: str
    healthz: dict[str, str]
    timeline: list[tuple[float, bool, str]] = field(default_factory=list)  # (time, all ok, what was not)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HealthWatch]:
        async with httpx.AsyncClient(timeout=2.0) as http, background(self._poll(http), name="chaos-health-watch"):
            yield self

    async def check(self, http: httpx.AsyncClient) -> list[str]:
        """Names of what is not healthy now (empty: /api/health is 200 pass/warn and every /healthz 200)."""
        urls = {"/api/health": f"{self.front}/api/health", **self.healthz}
        answers = await asyncio.gather(*(self._ok(http, u, api=n == "/api/health") for n, u in urls.items()))
        return [n for n, ok in zip(urls, answers, strict=True) if not ok]

    @staticmethod
    async def _ok(http: httpx.AsyncClient, url: str, *, api: bool) -> bool:
        try:
            r = await http.get(url)
        except httpx.HTTPError:
            return False
        if r.status_code != 200:
            return False
        try:
            return not api or r.json().get("status") in ("pass", "warn")
        except ValueError:
            return False

    async def _poll(self, http: httpx.AsyncClient) -> None:
        while True:
            try:
                bad = await self.check(http)
            except Exception as exc:  # noqa: BLE001 - the watch must outlive any odd answer
                log.warning("health watch: %r", exc)
                bad = ["health-watch"]
            self.timeline.append((time.time(), not bad, ",".join(bad)))
            await asyncio.sleep(0.5)

    def healthy_since(self, t0: float) -> float | None:
        """Time of the first all-healthy sample at or after `t0` that stayed healthy to the end."""
        since = None
        for t, ok, _ in self.timeline:
            if t < t0:
                continue
            if ok and since is None:
                since = t
            elif not ok:
                since = None
        return since

    def back_at(self, name: str, *, since: float) -> float | None:
        """When `name` was first seen healthy after having been seen unhealthy since `since`."""
        down = False
        for t, _, bad in self.timeline:
            if t < since:
                continue
            if name in bad.split(","):
                down = True
            elif down:
                return t
        return None

    def unhealthy_between(self, t0: float, t1: float) -> list[str]:
        """What was seen unhealthy in `[t0, t1]`."""
        seen: set[str] = set()
        for t, ok, bad in self.timeline:
            if t0 <= t <= t1 and not ok:
                seen.update(b for b in bad.split(",") if b)
        return sorted(seen)
