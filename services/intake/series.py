"""Cumulative -> delta: the last point of each cumulative series, and the difference to a new one."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["Point", "SeriesStore", "delta", "supersedes"]


@dataclass(frozen=True, slots=True)
class Point:
    """A histogram data point (or the difference of two): the window, counts per explicit bucket."""

    start_ns: int
    time_ns: int
    count: int
    total: float
    bounds: tuple[float, ...]
    buckets: tuple[int, ...]
    max: float | None = None


class SeriesStore:
    """The last cumulative point per series key; the least recently seen series go past `max_series`."""

    def __init__(self, *, max_series: int) -> None:
        self.max_series = max_series
        self._last: OrderedDict[Hashable, Point] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def get(self, key: Hashable) -> Point | None:
        return self._last.get(key)

    def put(self, key: Hashable, point: Point) -> None:
        self._last[key] = point
        self._last.move_to_end(key)
        while len(self._last) > self.max_series:
            self._last.popitem(last=False)




def delta(*, prev: Point | None, cur: Point, first_window_ns: int) -> Point | None:
    """What happened since `prev` (None: nothing new, or `cur` is only a baseline).

    A reset (the app restarted: new start time, or counts went down) counts `cur` whole, as does a
    series seen first that started at most `first_window_ns` ago; an older first point is a baseline."""
    if prev is None:
        fresh = cur.start_ns > 0 and cur.time_ns - cur.start_ns <= first_window_ns
        return cur if fresh and cur.count else None
    if cur.time_ns <= prev.time_ns and cur.start_ns == prev.start_ns:
        return None  # a repeat or an older point: already counted
    if cur.start_ns == prev.start_ns and cur.count == prev.count and cur.buckets == prev.buckets:
        return None
    diff = tuple(c - p for c, p in zip(cur.buckets, prev.buckets, strict=True)) if cur.bounds == prev.bounds else None
    if cur.start_ns != prev.start_ns or cur.count < prev.count or diff is None or min(diff, default=0) < 0:
        return cur if cur.count else None  # a reset: the app restarted (or its counts went down)
    return Point(start_ns=prev.time_ns, time_ns=cur.time_ns, count=cur.count - prev.count,
                 total=max(0.0, cur.total - prev.total), bounds=cur.bounds, buckets=diff, max=cur.max)


def supersedes(*, prev: Point | None, cur: Point) -> bool:
    """Whether `cur` replaces `prev` as the series' last point (not a repeat or a late arrival)."""
    return prev is None or cur.time_ns > prev.time_ns or cur.start_ns != prev.start_ns
