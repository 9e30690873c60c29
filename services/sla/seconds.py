"""The hot window: a service's request reports per second (`Status.seconds`), newest last.

The request triggers are judged on it; it holds only the seconds of the longest request
window. A list of `state.Second` lists, not a dict: it survives the JSON changelog unchanged.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from services.sla.state import Second, Sketch, merge_sketch
from shared.histogram import LatencySketch

__all__ = ["add_second", "sum_seconds", "quantile"]


def add_second(seconds: list[Second], *, sec: int, count: int, errors: int, latency_ms: float, sketch: Sketch,
               keep_from: int) -> list[Second]:
    """Add a report to its second; returns the window without the seconds before `keep_from` (the same
    list when none were dropped)."""
    for entry in reversed(seconds):  # the newest seconds are the likely ones
        if entry[0] == sec:
            entry[1] += count
            entry[2] += errors
            entry[3] += latency_ms
            merge_sketch(entry[4], sketch)
            break
        if entry[0] < sec:
            bisect.insort(seconds, [sec, count, errors, latency_ms, dict(sketch)], key=_second_of)
            break
    else:
        seconds.insert(0, [sec, count, errors, latency_ms, dict(sketch)])
    if seconds[0][0] < keep_from:
        return [e for e in seconds if e[0] >= keep_from]
    return seconds


def sum_seconds(seconds: Iterable[Second], start: float, end: float, latency: bool) -> tuple[int, int, float, Sketch]:
    """(count, errors, latency sum, merged sketch) of the seconds wholly inside `[start, end)`; without
    `latency` only the counts."""
    count = errors = 0
    total_ms = 0.0
    merged: Sketch = {}
    for sec, c, e, ms, wire in seconds:
        if sec + 1 <= start or sec >= end:
            continue
        count += c
        errors += e
        if latency:
            total_ms += ms
            merge_sketch(merged, wire)
    return count, errors, total_ms, merged


def quantile(wire: Sketch, q: float) -> float | None:
    """`LatencySketch.from_wire(wire).quantile(q)` without checking `wire` again (every report in it was checked)."""
    buckets = sorted((int(b), c) for b, c in wire.items())
    count = sum(c for _, c in buckets)
    if count == 0:
        return None
    rank = q * (count - 1)
    seen = 0
    for b, c in buckets:
        seen += c
        if seen > rank:
            return LatencySketch.value_of(b)
    return LatencySketch.value_of(buckets[-1][0])


def _second_of(entry: Second) -> int:
    return int(entry[0])
