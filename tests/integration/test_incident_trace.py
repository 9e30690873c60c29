"""One incident is one trace: a protected app's failing requests -> SLA (Faust) -> recovery -> the flags kill
(HTTP) -> FlagChanged, and the notifier's incident and notices, through real Kafka, Postgres and Redis
(private topic prefix, schemas and key prefixes), every span in the in-memory exporter.

Asserted: the incident's `trace_id` (API) is the trace of a failing request; that trace has one root, the
request's SERVER span; the notice and the flag change hang below it in the expected parent order; the
window's span links the window's other failing requests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI, HTTPException
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from sdk.middleware import RequestRecorder, RequestsMiddleware
from services.flags.app import create_app as flags_app
from services.notifier.app import create_app as notifier_app
from services.notifier.settings import NotifierSettings
from services.recovery.app import create_app as recovery_app
from services.recovery.settings import RecoverySettings
from shared import topics
from shared.auth import AuthSettings
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from tests.integration.flags.conftest import ADMIN, ThreadServer, drop, flags_settings
from tests.integration.sla.test_sla_kafka import recent, running

TOKEN = "test-admin-token"  # the flags service's admin token in flags_settings


def protected_app(recorder: RequestRecorder) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestsMiddleware, recorder=recorder)

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/fail")
    async def fail() -> None:
        raise HTTPException(500, "gamification broke")

    return app


@asynccontextmanager
async def services(kafka: KafkaSettings, unique: str, postgres_dsn: str, redis_url: str
                   ) -> AsyncIterator[tuple[FastAPI, ThreadServer]]:
    """The flags service (uvicorn: the kill goes over real HTTP), recovery and the notifier; yields the notifier."""
    pg, rd = PostgresSettings(dsn=SecretStr(postgres_dsn)), RedisSettings(url=SecretStr(redis_url))
    auth = AuthSettings(admin_token=SecretStr(TOKEN), env="test")
    fsettings = flags_settings(unique, kafka, postgres_dsn, redis_url)
    flags = ThreadServer(flags_app(fsettings)).start()
    recovery = recovery_app(RecoverySettings(kafka=kafka, postgres=pg, redis=rd, db_schema=f"recovery_t{unique}",
                                             flags_url=flags.url, auth=auth, tick_interval_s=0.2))
    notifier = notifier_app(NotifierSettings(kafka=kafka, postgres=pg, redis=rd, db_schema=f"notifier_t{unique}",
                                             auth=auth, tick_interval_s=0.2))
    try:
        async with recovery.router.lifespan_context(recovery), notifier.router.lifespan_context(notifier):
            yield notifier, flags
    finally:
        flags.stop()
        await drop(fsettings, redis_url)
        conn = await asyncpg.connect(postgres_dsn)
        try:
            for schema in (f"recovery_t{unique}", f"notifier_t{unique}"):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def bad_seconds(app: FastAPI, recorder: RequestRecorder, clock: list[float], pub: KafkaPublisher) -> None:
    """20 requests a second, 8 of them failing from the third second on; each second published as a window."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://demo") as client:
        for second in range(8):
            for i in range(20):
                await client.get("/fail" if second >= 2 and i % 5 in (1, 3) else "/ok")
            clock[0] += 1.0
            await recorder.publish_window(pub)


async def eventually(find: Callable[[], Any], *, timeout: float = 20.0, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = find()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"not seen in {timeout:g}s: {what}"
        await asyncio.sleep(0.1)


def path_to_root(span: ReadableSpan, spans: dict[int, ReadableSpan]) -> list[str]:
    names = [span.name]
    while span.parent is not None:
        assert span.parent.span_id in spans, f"{span.name}: its parent is not in the trace (a broken link)"
        span = spans[span.parent.span_id]
        names.append(span.name)
    return names[::-1]


async def test_one_incident_is_one_trace(kafka_settings: KafkaSettings, unique: str, postgres_dsn: str,
                                         redis_url: str, span_exporter: InMemorySpanExporter) -> None:
    p = kafka_settings.topic_prefix
    await topics.create_topics(kafka_settings)
    clock = [recent(30).timestamp()]
    recorder = RequestRecorder(service=f"demo{unique}", instance="blue", wall_clock=lambda: clock[0])
    app = protected_app(recorder)
    async with AsyncExitStack() as stack:
        notifier, flags = await stack.enter_async_context(services(kafka_settings, unique, postgres_dsn, redis_url))
        async with httpx.AsyncClient(base_url=flags.url, headers=ADMIN) as http:
            assert (await http.post("/api/flags/gamification/enable", json={})).status_code == 200
        await stack.enter_async_context(running(kafka_settings, f"sla-{unique}"))
        pub = await stack.enter_async_context(KafkaPublisher.start(kafka_settings, source=f"/demo/{unique}"))
        await bad_seconds(app, recorder, clock, pub)

        store = notifier.state.notifier.store
        [incident] = await eventually(store.open_incidents, what="an incident opened by the notifier")
        trace_id = incident.trace_id
        assert trace_id is not None

        def the_trace() -> dict[int, ReadableSpan]:
            return {s.context.span_id: s for s in span_exporter.get_finished_spans()
                    if format(s.context.trace_id, "032x") == trace_id}

        def complete() -> dict[int, ReadableSpan]:
            spans = the_trace()
            names = {s.name for s in spans.values()}
            done = {"notice status_page", f"{p}flags.changes publish", f"{p}recovery.commands publish",
                    f"{p}notifier.deliveries publish"} <= names
            return spans if done and any(n == f"{p}recovery.actions process" for n in names) else {}

        def closed() -> dict[int, ReadableSpan]:  # a parent ends after its children: wait for the open ones
            spans = complete()
            every_parent = all(s.parent is None or s.parent.span_id in spans for s in spans.values())
            return spans if spans and every_parent else {}

        spans = await eventually(closed, what="the kill, the command, the notice in the incident's trace, "
                                              "every span's parent ended (else a broken link)")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(notifier), base_url="http://n",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            body = (await c.get(f"/api/incidents/{incident.incident_id}")).json()
    assert body["trace_id"] == trace_id

    [root] = [s for s in spans.values() if s.parent is None]
    assert root.kind == SpanKind.SERVER and root.name == "GET /fail"
    assert root.attributes is not None and root.attributes["http.response.status_code"] == 500

    [window] = [s for s in spans.values() if s.name == "requests window"]
    assert window.links and all(link.context.trace_id != window.context.trace_id for link in window.links)
    assert window.attributes is not None and window.attributes["safeguard.requests.errors"] == 8

    head = ["GET /fail", "requests window", f"{p}telemetry.requests publish", f"{p}telemetry.requests process",
            f"{p}sla.triggers publish", f"{p}sla.triggers process"]
    [notice] = [s for s in spans.values() if s.name == "notice status_page"
                and s.attributes is not None and s.attributes["safeguard.incident_id"] == incident.incident_id][:1]
    assert path_to_root(notice, spans) == [*head, "incident open", "notice status_page"]

    [changed] = [s for s in spans.values() if s.name == f"{p}flags.changes publish"
                 and spans[s.parent.span_id].name == "flags outbox relay"]  # type: ignore[union-attr]
    kill_path = path_to_root(changed, spans)
    assert kill_path[:len(head)] == head
    middle = [n for n in kill_path[len(head):] if not n.startswith("fastapi.")]  # FastAPI's own inner spans
    assert middle == ["recovery disable_new_features", "POST", "POST /api/flags/_kill-new", "flags outbox relay",
                      f"{p}flags.changes publish"]

    # every span of the trace hangs from the root (no orphan), and the recovery's report reached the notifier
    for span in spans.values():
        assert path_to_root(span, spans)[0] == "GET /fail"
    print(f"\nincident trace {trace_id}: {len(spans)} spans\n{tree(spans)}\nscopes:",
          sorted({s.instrumentation_scope.name for s in spans.values() if s.instrumentation_scope}))


def tree(spans: dict[int, ReadableSpan]) -> str:
    """The trace as an indented outline (printed with -s)."""
    children: dict[int | None, list[ReadableSpan]] = {}
    for s in sorted(spans.values(), key=lambda s: s.start_time or 0):
        children.setdefault(s.parent.span_id if s.parent else None, []).append(s)

    def lines(parent: int | None, depth: int) -> list[str]:
        return [line for s in children.get(parent, [])
                for line in [f"{'  ' * depth}{s.name} [{s.kind.name.lower()}]", *lines(s.context.span_id, depth + 1)]]
    return "\n".join(lines(None, 0))
