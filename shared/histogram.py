"""A mergeable latency sketch (DDSketch-style log buckets, 2 % relative accuracy).

Instances add samples locally, ship the sparse bucket counts in `RequestsObserved`, and the
SLA processor merges sketches from any number of instances and seconds before it asks for
a quantile. Merging is exact (bucket counts add up), so p99 over a minute of ten instances
is as accurate as p99 over one instance for one second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

__all__ = ["LatencySketch", "RELATIVE_ACCURACY", "MAX_BUCKET", "check_wire", "wire_samples"]

RELATIVE_ACCURACY = 0.02
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_MS = 0.01  # anything faster lands in bucket 0
_MAX_MS = 1e10  # ~115 days: anything slower lands in the last bucket
MAX_BUCKET = math.ceil(math.log(_MAX_MS / _MIN_MS) / _LOG_GAMMA)
_CANONICAL = frozenset(str(b) for b in range(MAX_BUCKET + 1))


def check_wire(buckets: Mapping[str, object]) -> dict[int, int]:
    """The wire form (`{"<bucket>": count}`) as ints; ValueError naming the first bad entry."""
    out: dict[int, int] = {}
    for key, count in buckets.items():
        if not (isinstance(key, str) and key in _CANONICAL):
            raise ValueError(f"latency bucket {key!r} is not an integer in [0, {MAX_BUCKET}]")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"latency bucket {key!r} has count {count!r}, not a non-negative integer")
        out[int(key)] = out.get(int(key), 0) + count
    return out


def wire_samples(buckets: Mapping[str, object]) -> int:
    """How many samples the wire form holds; ValueError like `check_wire` (which this only calls on bad input)."""
    if buckets.keys() <= _CANONICAL and all(type(c) is int and c >= 0 for c in buckets.values()):
        return sum(buckets.values())  # type: ignore[arg-type]
    return sum(check_wire(buckets).values())


class LatencySketch:
    """Sparse log-bucketed histogram of latencies in milliseconds."""

    __slots__ = ("buckets", "count", "total_ms")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total_ms = 0.0

    @staticmethod
    def bucket_of(value_ms: float) -> int:
        if value_ms <= _MIN_MS:
            return 0
        if value_ms < _MAX_MS:
            return max(0, math.ceil(math.log(value_ms / _MIN_MS) / _LOG_GAMMA))
        if math.isnan(value_ms):
            raise ValueError("a latency of NaN has no bucket")
        return MAX_BUCKET

    @staticmethod
    def value_of(bucket: int) -> float:
        """Representative value of a bucket: the midpoint that keeps the relative error bound."""
        if bucket == 0:
            return _MIN_MS
        return _MIN_MS * 2 * _GAMMA**bucket / (_GAMMA + 1)

    def add(self, value_ms: float, n: int = 1) -> None:
        b = self.bucket_of(value_ms)
        self.buckets[b] = self.buckets.get(b, 0) + n
        self.count += n
        self.total_ms += value_ms * n

    def merge(self, other: LatencySketch) -> LatencySketch:
        for b, c in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + c
        self.count += other.count
        self.total_ms += other.total_ms
        return self

    def quantile(self, q: float) -> float | None:
        """Value at quantile q in [0, 1]; None when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen > rank:
                return self.value_of(b)
        return self.value_of(max(self.buckets))

    def count_above(self, threshold_ms: float) -> int:
        """Samples whose bucket lies wholly above the threshold (slow calls)."""
        limit = self.bucket_of(threshold_ms)
        return sum(c for b, c in self.buckets.items() if b > limit)

    @property
    def mean(self) -> float | None:
        return self.total_ms / self.count if self.count else None

    def to_wire(self) -> dict[str, int]:
        return {str(b): c for b, c in self.buckets.items()}

    @classmethod
    def from_wire(cls, buckets: Mapping[str, int] | Mapping[int, int], total_ms: float = 0.0) -> LatencySketch:
        """Raises ValueError when a bucket is not an integer in range or a count is negative."""
        s = cls()
        s.buckets = check_wire({str(b): c for b, c in buckets.items()})
        s.count = sum(s.buckets.values())
        s.total_ms = total_ms
        return s

    @classmethod
    def of(cls, values: Iterable[float]) -> LatencySketch:
        s = cls()
        for v in values:
            s.add(v)
        return s
