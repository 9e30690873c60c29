from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.notifier.models import Incident
from services.notifier.policy import load_policy
from services.notifier.repository import MemoryIncidentStore
from services.notifier.service import NotifierService
from shared.testing import FakeClock, InMemoryPublisher

CONFIG = Path(__file__).resolve().parents[3] / "config" / "notifier.yaml"


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail_channels: set[str] = set()

    async def send(self, *, channel: str, recipient: str, message: str, incident: Incident | None) -> None:
        if channel in self.fail_channels:
            raise ConnectionError("webhook answered 503")
        self.sent.append((channel, recipient, message))


@dataclass
class Env:
    svc: NotifierService
    pub: InMemoryPublisher
    store: MemoryIncidentStore
    sender: FakeSender
    clock: FakeClock
    start: datetime = field(default_factory=lambda: datetime.now(UTC))


@pytest.fixture
def env() -> Env:
    pub, store, sender, clock = InMemoryPublisher(), MemoryIncidentStore(), FakeSender(), FakeClock()
    start, t0 = datetime.now(UTC), clock()
    svc = NotifierService(policy=load_policy(CONFIG), publisher=pub, store=store, sender=sender,
                          now=lambda: start + timedelta(seconds=clock() - t0))
    return Env(svc, pub, store, sender, clock, start)
