"""The notifier's composition root: one HTTP client serves the channels and the SLA service (no twin)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.notifier import app as notifier_app
from services.notifier.impact import SlaImpact
from services.notifier.repository import MemoryIncidentStore
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG


async def test_one_http_client_for_the_channels_and_the_sla_impact(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[httpx.AsyncClient] = []
    real_init = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)
    app = notifier_app.create_app(NotifierSettings(policy_file=CONFIG, auth=AuthSettings(env="test")),
                                  publisher=InMemoryPublisher(), store=MemoryIncidentStore(), consume=False)
    async with app.router.lifespan_context(app):
        impact = app.state.notifier.impact
        assert isinstance(impact, SlaImpact)
        assert len(made) == 1 and impact.http is made[0]
    assert made[0].is_closed
