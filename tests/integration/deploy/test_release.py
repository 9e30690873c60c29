"""The canary bake of deploy/release.py for real: a private HAProxy with two colours (deploy/traffic/lab.py),
real Kafka (per-test topic prefix). A provoked `sla.triggers` TriggerFired during a step, or the canary's
own errors on `telemetry.requests`, rolls the traffic back at once and kills the release's flags; a clean
bake goes on to 100 %."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy.release import Plan, Record, Release, Step
from deploy.traffic import make_traffic
from deploy.traffic.lab import Lab
from shared.events import DeploymentRolledBack, Event, RequestsObserved, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings

pytestmark = pytest.mark.integration


class Flags:
    def __init__(self) -> None:
        self.killed: list[str] = []

    async def kill(self, key: str, *, reason: str) -> None:
        self.killed.append(key)


class NoInstances:
    async def start(self, colour: str, version: str) -> None:
        return None


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


def _record() -> Record:
    return Record(deploy_id="d1", version="v2", from_version=None, colour="green", from_colour="blue",
                  db_before=None, db_after=None, flags=["streaks"], started=datetime.now(UTC).isoformat())


async def _release(lab: Lab, kafka: KafkaSettings, tmp_path: Path, pub: KafkaPublisher,
                   steps: list[Step], events: list[Event]) -> Release:
    spec = lab.spec()
    traffic = make_traffic(spec)
    await traffic.switch("blue")

    async def publish(event: Event) -> None:
        events.append(event)
        await pub.publish(event)
    return Release(spec=spec, traffic=traffic, instances=NoInstances(), kafka=kafka, dsn="unused",
                   backup_dir=tmp_path, state_dir=tmp_path, report=steps.append, flags=Flags(),  # type: ignore[arg-type]
                   publish=publish)


def _fired() -> TriggerFired:
    return TriggerFired(service="demo", trigger="error_rate_high", episode_id="ep-canary", value=0.09,
                        threshold=0.05, window_seconds=10)


def _window(errors: int, count: int) -> RequestsObserved:
    return RequestsObserved(service="demo", instance="demo-green", window_start=datetime.now(UTC), count=count,
                            errors=errors)


async def _canary(release: Release, pub: KafkaPublisher, provoke: Event | None, *, bake_s: float) -> Record:
    rec = _record()
    task = asyncio.create_task(release._canary(rec, Plan(version="v2", steps=(10, 50, 100), bake_s=bake_s)))
    while not any(s["name"] == "traffic 10%" for s in rec.steps):
        if task.done():
            return await task  # raises what stopped it
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # the watch reads from the end it pinned when it started
    if provoke is not None:
        await pub.publish(provoke)
    return await asyncio.wait_for(task, timeout=60)


@pytest.mark.parametrize("provoke, why", [(_fired(), "sla trigger error_rate_high"),
                                          (_window(errors=9, count=30), "canary demo-green: error rate 30.0%")])
async def test_a_provoked_trigger_or_canary_errors_roll_back_at_once(lab: Lab, kafka_settings: KafkaSettings,
                                                                    tmp_path: Path, provoke: Event, why: str) -> None:
    steps: list[Step] = []
    events: list[Event] = []
    async with KafkaPublisher.start(kafka_settings, source="/test") as pub:
        for warm in (_fired().model_copy(update={"service": "other"}), _window(0, 1).model_copy(
                update={"instance": "other"})):
            await pub.publish(warm)  # the prefixed topics exist before the watch assigns them
        release = await _release(lab, kafka_settings, tmp_path, pub, steps, events)
        rec = await _canary(release, pub, provoke, bake_s=20)
    assert rec.status == "rolled_back" and why in rec.reason, rec.reason
    assert await release.traffic.weights() == {"blue": 100, "green": 0}
    assert release.flags.killed == ["streaks"]  # type: ignore[union-attr]
    [event] = [e for e in events if isinstance(e, DeploymentRolledBack)]
    assert event.automatic and event.flags_killed == ["streaks"] and event.colour == "blue" and event.switch_ms < 1000
    assert [s.name for s in steps][:2] == ["traffic 10%", "traffic back"]  # never reached 50 %
    assert release.history()[-1].status == "rolled_back"


async def test_a_clean_bake_goes_to_100_percent_and_ignores_other_services(lab: Lab, kafka_settings: KafkaSettings,
                                                                         tmp_path: Path) -> None:
    steps: list[Step] = []
    events: list[Event] = []
    async with KafkaPublisher.start(kafka_settings, source="/test") as pub:
        for warm in (_fired().model_copy(update={"service": "other"}), _window(0, 1)):
            await pub.publish(warm)  # the prefixed topics exist before the watch assigns them
        release = await _release(lab, kafka_settings, tmp_path, pub, steps, events)
        other = _fired().model_copy(update={"service": "checkout"})
        rec = await _canary(release, pub, other, bake_s=1.5)
    assert rec.status == "live", rec.reason
    assert await release.traffic.weights() == {"blue": 0, "green": 100}
    assert [s.name for s in steps] == ["traffic 10%", "traffic 50%", "traffic 100%", "live"]
    await release.traffic.switch("blue")


async def test_a_watch_that_cannot_start_stops_the_deploy_before_any_traffic_moves(
        lab: Lab, kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    from deploy.release import DeployError

    async with KafkaPublisher.start(kafka_settings, source="/test") as pub:
        release = await _release(lab, kafka_settings, tmp_path, pub, [], [])
        with pytest.raises(DeployError, match="canary watch could not start: .*does not exist"):
            await release._canary(_record(), Plan(version="v2", bake_s=1))  # its topics were never created
    assert await release.traffic.weights() == {"blue": 100, "green": 0}
