"""The SLA processor on the clock through real Kafka: a firing episode clears when its traffic stops (issue 14)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from services.sla.app import create_app
from services.sla.policy import SlaPolicy
from services.sla.settings import SlaSettings
from shared import topics
from shared.events import TriggerCleared, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
from shared.testing.kafka import expect_records
from tests.integration.sla.test_sla_kafka import create_topics, wait_for
from tests.unit.sla.helpers import requests

WINDOW, HOLD_CLEAR = 2.0, 2.0
POLICY = SlaPolicy.model_validate({"triggers": {
    "error_rate_high": {"threshold": 0.05, "window": WINDOW, "min_samples": 20, "hold_fire": 0, "hold_clear": HOLD_CLEAR},
    "budget_burn": {"enabled": False, "threshold": 1.0, "window": 300, "min_samples": 10},
}})


async def test_a_firing_error_rate_clears_on_the_clock_after_the_last_request(kafka_settings: KafkaSettings, unique: str) -> None:
    await create_topics(kafka_settings)
    triggers = kafka_settings.topic_prefix + topics.SLA_TRIGGERS
    settings = SlaSettings(app_id=f"sla-{unique}", kafka=kafka_settings, policy_file=None, web_enabled=False,
                           data_dir="/tmp/safeguard-sla-tests", tick_every=0.25, tick_idle=1.0)
    sla = create_app(settings, policy=POLICY)
    await sla.app.start()
    try:
        await wait_for(lambda: bool(sla.app.consumer.assignment()) and sla.app.tables.recovery.completed.is_set(), 30)
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3)
        async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
            for s in range(3):  # 50 % errors in the last three seconds, then nothing more
                await pub.publish(requests(s, errors=50, t0=t0))
        last_request = time.time()
        fired, cleared = await expect_records(kafka_settings.bootstrap_servers, triggers, count=2, timeout=15,
                                              where=lambda r: b'"error_rate_high"' in r.value)
        seen_at = time.time()
        reason = sla.core.status["shop"]["clears"]["error_rate_high"]["reason"]
    finally:
        await sla.app.stop()
    fired_event = TriggerFired.model_validate_json(fired.value)
    cleared_event = TriggerCleared.model_validate_json(cleared.value)
    assert cleared_event.episode_id == fired_event.episode_id
    data_ended = t0 + timedelta(seconds=3)
    # the window empties WINDOW s after the data ended, then no data holds HOLD_CLEAR s; ticks add < 1 s
    assert data_ended + timedelta(seconds=WINDOW + HOLD_CLEAR) <= cleared_event.time
    assert cleared_event.time <= data_ended + timedelta(seconds=WINDOW + HOLD_CLEAR + 1.5)
    assert reason.startswith("no data: 0 samples in the last 2 s")
    print(f"last request -> TriggerCleared on the topic: {seen_at - last_request:.2f} s "
          f"(event time: {(cleared_event.time - data_ended).total_seconds():.2f} s after the data ended)")
