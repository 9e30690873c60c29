"""The incident's timeline says why its trigger ended (TriggerCleared.reason: the SLA processor clears a
firing episode on the clock when its data stops, issue 14), in words."""

from __future__ import annotations

from shared.events import TriggerCleared, TriggerFired
from tests.unit.notifier.conftest import Env


async def test_the_resolve_note_says_why_the_trigger_ended(env: Env) -> None:
    inc = await env.svc.open_incident(TriggerFired(service="demo", trigger="error_rate_high", episode_id="ep1",
                                                   value=0.157, threshold=0.05, window_seconds=5))
    assert inc is not None and inc.title == "demo: error rate 15.7 % > 5 %"
    await env.svc.resolve_on_clear(TriggerCleared(
        service="demo", trigger="error_rate_high", episode_id="ep1", value=0.0, threshold=0.025,
        reason="no data: 0 samples in the last 5 s (fewer than 20) for 10 s"))
    notes = [e.text for e in env.store.entries[inc.incident_id] if "cleared" in e.text]
    assert notes == ["trigger cleared (error rate 0 % <= 2.5 %; no data: 0 samples in the last 5 s (fewer than 20)"
                     " for 10 s); duration 0m 00s"], notes
