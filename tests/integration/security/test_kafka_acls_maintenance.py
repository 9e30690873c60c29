"""Only the notifier schedules maintenance windows on the broker of `make up`: a window leaves its services out
of the SLA budgets, so an app that could write one could hide its own outage (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from shared.events import MaintenanceWindowScheduled
from shared.kafka.acls import PRINCIPALS
from tests.integration.security.test_kafka_acls import login, producer, send

pytestmark = pytest.mark.integration


def window(unique: str) -> MaintenanceWindowScheduled:
    """30 days ago (older than any record the SLA still counts) for a service named after the test: harmless on
    the live topic."""
    start = datetime.now(UTC) - timedelta(days=30)
    return MaintenanceWindowScheduled(window_id=f"mw-acl-{unique}", components=[f"acl-test-{unique}"],
                                      starts_at=start, ends_at=start + timedelta(minutes=1), by="tests", title="acl")


@pytest.mark.parametrize("principal", [p for p in PRINCIPALS if p != "notifier"])
async def test_only_the_notifier_schedules_maintenance(principal: str, unique: str) -> None:
    p = await producer(login(principal))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await send(p, window(unique))
    finally:
        await p.stop()


async def test_the_notifier_may(unique: str) -> None:
    p = await producer(login("notifier"))
    try:
        await send(p, window(unique))  # no error: the broker took it
    finally:
        await p.stop()
