"""Status-page subscribers are users: they hear of major and critical incidents (the policy's
`user_notice_severities`), while a minor one is shown on the page only (issue 14, audiences)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.notifier.models import Incident
from services.notifier.subscriber_relay import FanOutSender


class Store:
    def __init__(self) -> None:
        self.queued: list[Any] = []

    async def fan_out(self, notice: Any) -> None:
        self.queued.append(notice)


class Inner:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, *, channel: str, recipient: str, message: str, incident: Incident | None) -> None:
        self.sent.append(channel)


def _incident(severity: str) -> Incident:
    return Incident(incident_id=f"inc-{severity}", service="demo", trigger="error_rate_high", episode_id="ep",
                    title="demo: error rate 15.7 % > 5 %", severity=severity, opened_at=datetime.now(UTC))


@pytest.mark.parametrize(("severity", "told"), [("minor", False), ("major", True), ("critical", True)])
async def test_subscribers_hear_of_major_and_critical_incidents_only(severity: str, told: bool) -> None:
    store, inner = Store(), Inner()
    sender = FanOutSender(inner=inner, store=store, severities=("major", "critical"))  # type: ignore[arg-type]
    await sender.send(channel="status_page", recipient="status", message="Investigating: demo: error rate 15.7 %",
                      incident=_incident(severity))
    await sender.send(channel="stakeholder", recipient="cto", message="Investigating: x", incident=_incident("major"))
    assert bool(store.queued) is told and len(store.queued) <= 1
    assert inner.sent == ["status_page", "stakeholder"]  # the page and the others get it either way
