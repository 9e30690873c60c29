"""Kafka is not an open control plane (issue 10 #11): the stack's broker wants a SCRAM login and
each principal may do only what its service does. Against the real broker of `make up`, logged in
with the stack's own credentials (`$SAFEGUARD_SECRETS_DIR/kafka-<principal>`).

Not in tests/integration/shared: CI runs that folder once more against testcontainers' plain broker
(`SAFEGUARD_STACK=containers`), which has no logins to test. The refusals are on the real topics (no test prefix: the ACLs are those of the stack); the one
allowed write is a harmless RequestsObserved of a service named after the test.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from shared import topics
from shared.events import DisableNewFeatures, Event, RequestsObserved, TriggerCleared, TriggerFired
from shared.kafka.acls import PRINCIPALS, SDK_GROUP_PREFIX
from shared.kafka.codec import encode
from shared.settings import KafkaSettings

pytestmark = pytest.mark.integration


def login(principal: str, password: str | None = None) -> KafkaSettings:
    folder = os.environ.get("SAFEGUARD_SECRETS_DIR")
    if password is None:
        if not folder:
            pytest.fail("SAFEGUARD_SECRETS_DIR is not set: load .stack/env of a stack started by `make up`")
        password = (Path(folder) / f"kafka-{principal}").read_text().strip()
    base = KafkaSettings()
    return KafkaSettings(bootstrap_servers=base.bootstrap_servers, sasl_username=principal, sasl_password=password,
                         sasl_mechanism=base.sasl_mechanism)


async def producer(settings: KafkaSettings) -> AIOKafkaProducer:
    p = AIOKafkaProducer(**settings.client_kwargs(), enable_idempotence=True, acks="all", request_timeout_ms=10000)
    await asyncio.wait_for(p.start(), 20)
    return p


@pytest.fixture
async def as_app() -> AsyncIterator[AIOKafkaProducer]:
    p = await producer(login("app"))
    yield p
    await p.stop()


async def send(p: AIOKafkaProducer, event: Event, topic: str | None = None) -> None:
    key, value, headers = encode(event, source="/tests/acls")
    await asyncio.wait_for(p.send_and_wait(topic or event.topic, value=value, key=key, headers=headers), 20)


def forged_trigger(unique: str) -> TriggerFired:
    return TriggerFired(service="demo", trigger="error_rate_high", episode_id=f"forged-{unique}", value=0.9,
                        threshold=0.05, window_seconds=5, detail="forged by a protected app")


async def test_an_app_cannot_forge_a_trigger(as_app: AIOKafkaProducer, unique: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await send(as_app, forged_trigger(unique))


@pytest.mark.parametrize("topic", [topics.RECOVERY_COMMANDS, topics.RECOVERY_ACTIONS, topics.FLAGS_STATE,
                                   topics.FLAGS_CHANGES, topics.SLA_BUDGETS, topics.INCIDENTS_EVENTS,
                                   topics.NOTIFIER_DELIVERIES, topics.dlq(topics.SLA_TRIGGERS)])
async def test_an_app_writes_nothing_but_telemetry(as_app: AIOKafkaProducer, unique: str, topic: str) -> None:
    command = DisableNewFeatures(service="demo", episode_id=f"forged-{unique}", reason="forged")
    with pytest.raises(TopicAuthorizationFailedError):
        await send(as_app, command, topic)


async def test_an_app_may_send_telemetry(as_app: AIOKafkaProducer, unique: str) -> None:
    observed = RequestsObserved(service=f"acl-test-{unique}", instance="i1", window_start=datetime.now(UTC),
                                count=1, errors=0)
    await send(as_app, observed)  # no error: the broker took it


async def test_an_app_reads_commands_in_its_own_groups_only(unique: str) -> None:
    app = login("app")
    own = AIOKafkaConsumer(topics.RECOVERY_COMMANDS, **app.client_kwargs(),
                           group_id=f"{SDK_GROUP_PREFIX}acl-test.{unique}.commands", auto_offset_reset="latest")
    await own.start()
    try:
        await own.getmany(timeout_ms=500)
    finally:
        await own.stop()
    for topic, group, error in [(topics.RECOVERY_COMMANDS, "safeguard-recovery", GroupAuthorizationFailedError),
                                (topics.SLA_TRIGGERS, f"{SDK_GROUP_PREFIX}acl-test.{unique}", TopicAuthorizationFailedError)]:
        other = AIOKafkaConsumer(topic, **app.client_kwargs(), group_id=group, auto_offset_reset="latest")
        with pytest.raises(error):
            await other.start()
            await other.getmany(timeout_ms=5000)
        await other.stop()


@pytest.mark.parametrize("principal", [p for p in PRINCIPALS if p not in ("sla", "health")])
async def test_only_the_sla_processor_and_the_watchdog_send_triggers(principal: str, unique: str) -> None:
    """The health service's watchdog fires `unresponsive` when the SLA processor itself hangs."""
    p = await producer(login(principal))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await send(p, forged_trigger(unique))
    finally:
        await p.stop()


@pytest.mark.parametrize("principal", [p for p in PRINCIPALS if p != "recovery"])
async def test_only_recovery_sends_commands(principal: str, unique: str) -> None:
    p = await producer(login(principal))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await send(p, DisableNewFeatures(service="demo", episode_id=f"forged-{unique}", reason="forged"))
    finally:
        await p.stop()


@pytest.mark.parametrize("password", ["", "wrong"])
async def test_no_login_no_broker(password: str) -> None:
    """Without a login (PLAINTEXT) or with a wrong password the broker closes the connection."""
    settings = login("app", password) if password else KafkaSettings(
        bootstrap_servers=KafkaSettings().bootstrap_servers, security_protocol="PLAINTEXT")
    p = AIOKafkaProducer(**settings.client_kwargs(), request_timeout_ms=3000)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(p.start(), 10)
    await p.stop()


async def test_the_health_watchdog_may_send_a_trigger(unique: str) -> None:
    """Sent as history (2 h old: the notifier and recovery ignore it) and cleared at once, so the stack's status
    view, which reads sla.triggers, is left as it was."""
    p = await producer(login("health"))
    when, episode = datetime.now(UTC) - timedelta(hours=2), f"acl-test-{unique}/unresponsive/1"
    try:
        await send(p, TriggerFired(time=when, service=f"acl-test-{unique}", trigger="unresponsive", episode_id=episode,
                                   value=3, threshold=3, window_seconds=90, detail="acl test"))
        await send(p, TriggerCleared(time=when, service=f"acl-test-{unique}", trigger="unresponsive",
                                     episode_id=episode, value=0, threshold=3))
    finally:
        await p.stop()
