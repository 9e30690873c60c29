"""The OFREP edge ahead of FastAPI (services/flags/edge.py): it answers the plain case itself, with the rate
limiter's decision and headers; everything else goes on to the full app unchanged, with the body replayed and
nothing counted twice. The flags core runs on the in-memory store (services/flags/memory.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from services.flags.edge import FlagsEdge
from services.flags.memory import MemoryCache, MemoryRepository
from services.flags.models import FlagCreate
from services.flags.ofrep import TRACED, AnswerCache, Answers, untraced
from services.flags.service import FlagService
from services.flags.snapshot import StreamSlots
from shared.auth import Authenticator, AuthSettings
from shared.guard import Guard, GuardSettings
from shared.ratelimit import RateLimiter

BODY = b'{"context":{"targetingKey":"user-1","email":"a@example.com"}}'
SINGLE, BULK = "/ofrep/v1/evaluate/flags/gamification", "/ofrep/v1/evaluate/flags"


class Counted(RateLimiter):
    def __init__(self, limit: str = "100/second") -> None:
        super().__init__(storage=None, default=limit)
        self.hits = 0

    async def hit(self, *args: Any, **kwargs: Any) -> Any:
        self.hits += 1
        return await super().hit(*args, **kwargs)


async def _edge(*, traced: bool = False, limit: str = "100/second", keys: dict[str, str] | None = None,
                loaded: bool = True) -> tuple[FlagsEdge, Counted, FlagService]:
    svc = FlagService(repo=MemoryRepository(), cache=MemoryCache(), store_timeout_s=0.5)
    if loaded:
        await svc.load()
        await svc.create(FlagCreate.model_validate({"key": "gamification", "state": "ENABLED"}), actor="admin:t")
    auth = Authenticator(AuthSettings(env="test", admin_token=SecretStr("adm"),
                                      client_keys={k: SecretStr(v) for k, v in (keys or {}).items()}))
    limiter = Counted(limit)
    limiter.identify = auth.verified_identity
    edge = FlagsEdge(state=SimpleNamespace(flags=svc), auth=auth, limiter=limiter,
                     guard=Guard.checks_only(settings=GuardSettings(max_json_depth=8)),
                     answers=Answers(cache=AnswerCache()), traced=lambda scope: traced,
                     slots=StreamSlots(max_total=4, max_per_client=2))
    return edge, limiter, svc


def _scope(path: str = SINGLE, body: bytes = BODY, *extra: tuple[bytes, bytes], length: bool = True
           ) -> dict[str, Any]:
    host = [] if any(name == b"host" for name, _ in extra) else [(b"host", b"127.0.0.1:8001")]
    headers = [*host, (b"content-type", b"application/json"), *extra]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    return {"type": "http", "method": "POST", "path": path, "headers": headers, "client": ("127.0.0.1", 5000)}


class Wire:
    """The connection: the request body in one message, then a disconnect; what the app sent."""

    def __init__(self, body: bytes = BODY) -> None:
        self.messages: list[dict[str, Any]] = [{"type": "http.request", "body": body, "more_body": False},
                                               {"type": "http.disconnect"}]
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return self.messages.pop(0) if self.messages else {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(dict(message))

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def json(self) -> Any:
        return json.loads(self.sent[1]["body"])


async def _run(edge: FlagsEdge, scope: dict[str, Any], wire: Wire) -> Any:
    return await edge(scope, wire.receive, wire.send)


async def test_the_plain_case_is_answered_at_the_edge_with_the_limiters_headers() -> None:
    edge, limiter, _ = await _edge()
    wire = Wire()
    assert await _run(edge, _scope(), wire) is None
    assert wire.status == 200 and wire.json == {"key": "gamification", "reason": "STATIC", "variant": "on",
                                                "value": True}
    assert wire.headers[b"ratelimit"] == b'"default";r=99;t=1' and limiter.hits == 1
    bulk = Wire()
    assert await _run(edge, _scope(BULK), bulk) is None
    again = Wire()
    await _run(edge, _scope(BULK, BODY, (b"if-none-match", bulk.headers[b"etag"])), again)
    assert again.status == 304 and again.sent[1]["body"] == b""


async def test_a_refusal_is_429_with_retry_after_at_the_edge() -> None:
    edge, _, _ = await _edge(limit="2/minute")
    for _ in range(2):
        await _run(edge, _scope(), Wire())
    wire = Wire()
    assert await _run(edge, _scope(), wire) is None
    assert wire.status == 429 and int(wire.headers[b"retry-after"]) >= 1
    assert wire.json["errorCode"] == "RATE_LIMITED"


@pytest.mark.parametrize("case", ["sampled", "foreign host", "two hosts", "origin", "cross-site fetch", "chunked",
                                  "too large", "no reader", "not loaded", "not OFREP"])
async def test_what_the_edge_leaves_goes_to_the_full_app_uncounted(case: str) -> None:
    edge, limiter, _ = await _edge(traced=case == "sampled", keys={"web": "k1"} if case == "no reader" else None,
                                   loaded=case != "not loaded")
    big = b'{"context":{"x":"' + b"a" * (70 * 1024) + b'"}}'
    scope = {
        "sampled": _scope(), "foreign host": _scope(SINGLE, BODY, (b"host", b"evil.example.com")),
        "two hosts": _scope(SINGLE, BODY, (b"host", b"127.0.0.1"), (b"host", b"evil.example.com")),
        "origin": _scope(SINGLE, BODY, (b"origin", b"https://evil.example.com")),
        "cross-site fetch": _scope(SINGLE, BODY, (b"sec-fetch-site", b"cross-site")),
        "chunked": _scope(SINGLE, BODY, (b"transfer-encoding", b"chunked"), length=False),
        "too large": _scope(SINGLE, big), "no reader": _scope(), "not loaded": _scope(),
        "not OFREP": _scope("/api/flags"),
    }[case]
    wire = Wire(big if case == "too large" else BODY)
    receive = await _run(edge, scope, wire)
    assert receive == wire.receive and wire.sent == [] and limiter.hits == 0
    assert scope.get(TRACED) is (True if case == "sampled" else None if case == "not OFREP" else False)


async def test_a_deep_body_goes_on_replayed_for_the_guards_answer() -> None:
    edge, limiter, _ = await _edge()
    deep = b'{"context":{"a":' + b"[" * 20 + b"]" * 20 + b"}}"
    wire = Wire(deep)
    receive = await _run(edge, _scope(SINGLE, deep), wire)
    assert receive is not None and receive != wire.receive and wire.sent == [] and limiter.hits == 0
    assert await receive() == {"type": "http.request", "body": deep, "more_body": False}
    assert await receive() == {"type": "http.disconnect"}


async def test_a_client_that_left_gets_nothing_and_is_not_counted() -> None:
    edge, limiter, _ = await _edge()
    wire = Wire()
    wire.messages = [{"type": "http.disconnect"}]
    assert await _run(edge, _scope(), wire) is None
    assert wire.sent == [] and limiter.hits == 0


async def test_an_evaluation_that_raises_is_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    edge, _, svc = await _edge()

    def broken(*_: Any) -> Any:
        raise RuntimeError("boom")
    svc.evaluate = broken  # type: ignore[method-assign,assignment]
    wire = Wire()
    await _run(edge, _scope(), wire)
    assert wire.status == 500 and wire.json["errorCode"] == "GENERAL"
    assert "OFREP evaluation failed" in caplog.text


async def test_a_kill_is_answered_at_once_by_the_edge() -> None:
    edge, _, svc = await _edge()
    first = Wire()
    await _run(edge, _scope(), first)
    await svc.set_enabled("gamification", enabled=False, kill=True, actor="admin:t", reason="test")
    second = Wire()
    await _run(edge, _scope(), second)
    assert first.json["value"] is True and second.json["value"] is False


def test_the_sampling_decision_is_taken_once_per_request() -> None:
    exclude = untraced(ratio=0.5)
    decided_on = {"type": "http", "path": SINGLE, "headers": [], TRACED: True}
    decided_off = {"type": "http", "path": SINGLE, "headers": [], TRACED: False}
    assert not any(exclude(decided_on) for _ in range(200))
    assert all(exclude(decided_off) for _ in range(200))


async def test_verdicts_are_kept_per_caller_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import services.flags.edge as edge_module
    monkeypatch.setattr(edge_module, "_MAX_VERDICTS", 3)
    edge, _, _ = await _edge(keys={"web": "k1"})
    for token in (b"Bearer k1", b"Bearer wrong", b"Bearer k1"):
        wire = Wire()
        await _run(edge, _scope(SINGLE, BODY, (b"authorization", token)), wire)
        assert (wire.sent != []) is (token == b"Bearer k1")
    assert len(edge._verdicts) == 2
    await asyncio.gather(*(_run(edge, _scope(SINGLE, BODY, (b"x-forwarded-for", f"203.0.113.{i}".encode()),
                                             (b"authorization", b"Bearer k1")), Wire()) for i in range(5)))
    assert len(edge._verdicts) <= 3


class StreamWire(Wire):
    """A GET whose client stays until `leave()`."""

    def __init__(self) -> None:
        super().__init__(b"")
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if self.messages[:1] and self.messages[0]["type"] == "http.request":
            return self.messages.pop(0)
        await self.gone.wait()
        return {"type": "http.disconnect"}

    def leave(self) -> None:
        self.gone.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(2):
            while len(self.sent) < count:
                await asyncio.sleep(0.01)


def _get(path: str = "/api/flags/_stream", *extra: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": [(b"host", b"127.0.0.1:8001"), *extra],
            "client": ("127.0.0.1", 5000)}


async def test_a_stream_is_served_at_the_edge_and_its_slot_given_back() -> None:
    edge, limiter, svc = await _edge()
    wire = StreamWire()
    task = asyncio.create_task(edge(_get(), wire.receive, wire.send))
    await wire.wait_for(2)
    assert wire.status == 200 and wire.headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert wire.headers[b"ratelimit"] == b'"default";r=99;t=1' and limiter.hits == 1
    assert wire.sent[1]["body"].startswith(b"event: snapshot\n") and edge.slots.total == 1
    await svc.set_enabled("gamification", enabled=False, kill=True, actor="admin:t", reason="test")
    await wire.wait_for(3)
    assert wire.sent[2]["body"].startswith(b"event: flag\n") and b'"gamification"' in wire.sent[2]["body"]
    wire.leave()
    assert await asyncio.wait_for(task, 2) is None
    assert edge.slots.total == 0 and svc.broadcaster.subscribers == 0


async def test_a_stream_ended_by_the_service_ends_the_body() -> None:
    edge, _, svc = await _edge()
    wire = StreamWire()
    task = asyncio.create_task(edge(_get(), wire.receive, wire.send))
    await wire.wait_for(2)
    svc.broadcaster.close()  # shutdown, or a reader too slow
    assert await asyncio.wait_for(task, 2) is None
    assert wire.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert edge.slots.total == 0


@pytest.mark.parametrize("case", ["no reader", "not loaded", "slots taken", "foreign host"])
async def test_a_stream_the_edge_leaves_takes_no_slot_and_no_hit(case: str) -> None:
    edge, limiter, _ = await _edge(keys={"web": "k1"} if case == "no reader" else None, loaded=case != "not loaded")
    if case == "slots taken":
        client = edge._verdict(_get(), {}).rate_key
        assert edge.slots.take(client) is None and edge.slots.take(client) is None  # 2 per client
    wire = StreamWire()
    scope = _get("/api/flags/_stream", (b"host", b"evil.example.com")) if case == "foreign host" else _get()
    if case == "foreign host":
        scope["headers"] = scope["headers"][1:]
    receive = await edge(scope, wire.receive, wire.send)
    assert receive == wire.receive and wire.sent == [] and limiter.hits == 0
    assert edge.slots.total == (2 if case == "slots taken" else 0)


def test_streams_are_never_traced() -> None:
    assert untraced(ratio=1.0)({"type": "http", "path": "/api/flags/_stream", "headers": []})
