"""An incident belongs to the trace of the trigger that opened it: its `trace_id` is in the API, and every
notice about it (also one sent later by the relay tick, outside any span) continues that trace."""

from __future__ import annotations

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.repository import MemoryIncidentStore
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.events import TriggerFired
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, Env, FakeSender


def fired(episode: str = "ep1") -> TriggerFired:
    return TriggerFired(service="demo", trigger="error_rate_high", episode_id=episode, value=0.2, threshold=0.05,
                        window_seconds=5)


async def test_the_incident_keeps_the_trace_of_its_trigger(env: Env, span_exporter: InMemorySpanExporter) -> None:
    span_exporter.clear()
    env.sender.fail_channels = {"stakeholder"}
    with trace.get_tracer("tests").start_as_current_span("sla.triggers process") as consumer:
        inc = await env.svc.open_incident(fired())
    trace_id = format(consumer.get_span_context().trace_id, "032x")
    assert inc is not None and inc.trace_id == trace_id
    stored = await env.svc.get(inc.incident_id)
    assert stored.trace_id == trace_id
    env.sender.fail_channels = set()
    env.clock.advance(600)
    await env.svc.tick()  # the relay: no span is current here
    notices = [s for s in span_exporter.get_finished_spans() if s.name.startswith("notice ")]
    assert {s.name for s in notices} >= {"notice status_page", "notice stakeholder"}
    assert {format(s.context.trace_id, "032x") for s in notices} == {trace_id}
    late = [s for s in notices if s.name == "notice stakeholder" and s.attributes and s.attributes["safeguard.ok"]]
    assert late and late[-1].parent is not None


async def test_the_api_shows_the_trace_id() -> None:
    auth = AuthSettings(admin_token=SecretStr("t0ken"), env="test")
    app = create_app(NotifierSettings(policy_file=CONFIG, auth=auth), publisher=InMemoryPublisher(),
                     store=MemoryIncidentStore(), sender=FakeSender(), consume=False)
    async with app.router.lifespan_context(app):
        with trace.get_tracer("tests").start_as_current_span("sla.triggers process") as consumer:
            inc = await app.state.notifier.open_incident(fired())
        untraced = await app.state.notifier.open_incident(fired("ep2"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t",
                                     headers={"Authorization": "Bearer t0ken"}) as c:
            body = (await c.get(f"/api/incidents/{inc.incident_id}")).json()
            listed = (await c.get("/api/incidents")).json()
            other = (await c.get(f"/api/incidents/{untraced.incident_id}")).json()
    assert body["trace_id"] == format(consumer.get_span_context().trace_id, "032x")
    assert {i["incident_id"]: i["trace_id"] for i in listed}[inc.incident_id] == body["trace_id"]
    assert other["trace_id"] is not None and other["trace_id"] != body["trace_id"]  # its own trace, still one


async def test_the_resolution_joins_the_incident_trace(env: Env, span_exporter: InMemorySpanExporter) -> None:
    from shared.events import TriggerCleared

    with trace.get_tracer("tests").start_as_current_span("sla.triggers process"):
        inc = await env.svc.open_incident(fired())
    assert inc is not None
    span_exporter.clear()
    with trace.get_tracer("tests").start_as_current_span("sla.triggers process") as cleared:  # another trace
        await env.svc.resolve_on_clear(TriggerCleared(service="demo", trigger="error_rate_high", episode_id="ep1",
                                                      value=0.01, threshold=0.05))
    [resolve] = [s for s in span_exporter.get_finished_spans() if s.name == "incident resolve"]
    assert format(resolve.context.trace_id, "032x") == inc.trace_id != format(cleared.get_span_context().trace_id,
                                                                               "032x")
    notices = [s for s in span_exporter.get_finished_spans() if s.name.startswith("notice ")]
    assert notices and all(s.parent is not None and s.parent.span_id == resolve.context.span_id for s in notices)
