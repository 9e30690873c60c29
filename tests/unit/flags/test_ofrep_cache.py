"""AnswerCache: answers live within one snapshot generation and one second (rules may read `$flagd.timestamp`),
bounded in entries and body size."""

from __future__ import annotations

from services.flags.ofrep import AnswerCache
from services.flags.snapshot import Snapshot

ANSWER = (200, b'{"value":true}', [(b"content-type", b"application/json")])


def test_answers_expire_with_the_generation_and_the_second() -> None:
    now = [100.2]
    cache, snap = AnswerCache(clock=lambda: now[0]), Snapshot()
    assert cache.get(snap, "f", b"{}") is None
    cache.put("f", b"{}", ANSWER)
    assert cache.get(snap, "f", b"{}") == ANSWER
    assert cache.get(snap, None, b"{}") is None  # bulk and single never share
    now[0] = 101.0
    assert cache.get(snap, "f", b"{}") is None
    cache.put("f", b"{}", ANSWER)
    snap.generation += 1
    assert cache.get(snap, "f", b"{}") is None
    assert cache.get(Snapshot(), "f", b"{}") is None


def test_bounded() -> None:
    cache, snap = AnswerCache(max_entries=2, max_body=8, clock=lambda: 5.0), Snapshot()
    cache.get(snap, "f", b"")
    for body in (b"a", b"b", b"c", b"x" * 9):
        cache.put("f", body, ANSWER)
    assert [cache.get(snap, "f", b) is not None for b in (b"a", b"b", b"c", b"x" * 9)] == [True, True, False, False]
