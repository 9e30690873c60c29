from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from shared.ratelimit import RateLimiter
from shared.testing import InMemoryPublisher

PAGE = "http://127.0.0.1:8100"


@dataclass
class Env:
    client: httpx.AsyncClient
    pub: InMemoryPublisher
    settings: IntakeSettings


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    settings = IntakeSettings(beacon_rate="5/minute", beacon_origins=[PAGE], max_otlp_bytes=64 * 1024,
                              default_memory_limit_bytes=2**30)
    pub = InMemoryPublisher()
    app = create_app(settings, publisher=pub, limiter=RateLimiter(storage=None))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8006") as client:
            yield Env(client, pub, settings)
