"""The SDK's exposure buffer and reporter: distinct (flag, key hash, in) once a minute, bounded, hashed, posted
in batches; a failed post is counted and dropped. A fake clock; the service side: tests/integration/flags."""

from __future__ import annotations

import json
from typing import Any

import httpx

from sdk.flags.client import FlagClient
from shared.flags.evaluator import FlagSpec, compile_flag, evaluate
from sdk.flags.exposure import EXPOSURES_PATH, ExposureBuffer, ExposureReporter, key_hash
from services.flags.rules import rollout_targeting

ROLLOUT = compile_flag(FlagSpec("checkout", {"state": "ENABLED", "variants": {"on": True, "off": False},
                                             "defaultVariant": "off", "targeting": rollout_targeting("on", "off", 50)}))


def _saw(buf: ExposureBuffer, user: str) -> bool:
    ctx = {"targetingKey": user}
    r = evaluate(ROLLOUT, ctx)
    buf.saw(ROLLOUT, ctx, r)
    return r.variant == "on"


def test_each_distinct_user_is_sent_once_a_minute_hashed_with_its_side() -> None:
    now = [600.0]
    buf = ExposureBuffer(clock=lambda: now[0])
    sides = {f"user-{i}": _saw(buf, f"user-{i}") for i in range(40)}
    for i in range(40):
        _saw(buf, f"user-{i}")  # again, same minute
    sent = buf.take()
    assert len(sent) == 40 and 0 < sum(e["in"] for e in sent) < 40
    assert {e["key_hash"]: e["in"] for e in sent} == {key_hash(u): s for u, s in sides.items()}
    assert not any("user-" in json.dumps(e) for e in sent)  # raw ids never leave the app
    _saw(buf, "user-1")
    assert buf.take() == []  # already sent this minute
    now[0] += 60
    _saw(buf, "user-1")
    assert [e["key_hash"] for e in buf.take()] == [key_hash("user-1")]


def test_no_targeting_key_or_a_failed_evaluation_is_no_exposure_and_the_buffer_is_bounded() -> None:
    buf = ExposureBuffer(max_entries=3, clock=lambda: 0.0)
    buf.saw(ROLLOUT, {}, evaluate(ROLLOUT, {}))
    broken = compile_flag(FlagSpec("b", {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on",
                                         "targeting": {"nope": []}}))
    buf.saw(broken, {"targetingKey": "u"}, evaluate(broken, {"targetingKey": "u"}))
    assert buf.take() == []
    for i in range(5):
        _saw(buf, f"u{i}")
    assert len(buf.take()) == 3 and buf.dropped == 2


async def test_the_reporter_posts_batches_and_counts_a_failure_without_raising() -> None:
    posted: list[list[dict[str, Any]]] = []
    fail = [False]

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == EXPOSURES_PATH
        if fail[0]:
            return httpx.Response(503)
        posted.append(json.loads(request.content))
        return httpx.Response(202, json={})

    buf = ExposureBuffer(clock=lambda: 0.0)
    reporter = ExposureReporter(buf, batch=4)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://flags") as http:
        for i in range(10):
            _saw(buf, f"u{i}")
        await reporter.flush(http)
        assert [len(b) for b in posted] == [4, 4, 2] and reporter.sent == 10
        fail[0] = True
        for i in range(10, 13):
            _saw(buf, f"u{i}")
        await reporter.flush(http)
        assert reporter.failed == 3 and buf.take() == []  # dropped, not retried


async def test_the_client_records_its_local_evaluations() -> None:
    client = FlagClient("http://127.0.0.1:1", exposure_interval_s=3600)
    try:
        client._handle("snapshot", {"revision": 1, "flags": {"checkout": {
            "key": "checkout", "version": 1, "offVariant": "off", "definition": dict(ROLLOUT_DEF)}}})
        client.get_boolean("checkout", False, {"targetingKey": "alice"})
        client.get_boolean("checkout", False)
        assert client.exposures is not None
        assert [(e["flag"], e["key_hash"]) for e in client.exposures.buffer.take()] == [("checkout", key_hash("alice"))]
        off = FlagClient("http://127.0.0.1:1", report_exposures=False)
        assert off.exposures is None
        await off.stop()
    finally:
        await client.stop()


ROLLOUT_DEF = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
               "targeting": rollout_targeting("on", "off", 50)}
