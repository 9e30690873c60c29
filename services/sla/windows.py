"""Time-bucketed counts in a key-value table, with an index per series for expiry.

Keys are `"<service>|<series>|<bucket id>"`; the bucket ids of a series live under
`"<service>|idx|<series>"`, so expiry deletes exactly the keys that exist and never scans
the table. Values are JSON lists, so a Faust table's changelog carries them as they are.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, MutableMapping
from typing import Any

__all__ = ["BucketStore"]


class BucketStore:
    """Buckets of one service's series in `table` (a dict in tests, a Faust table in the app)."""

    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self.table = table

    @staticmethod
    def key(service: str, series: str, bucket: int) -> str:
        return f"{service}|{series}|{bucket}"

    def ids(self, service: str, series: str) -> list[int]:
        return list(self.table.get(f"{service}|idx|{series}") or [])

    def get(self, service: str, series: str, bucket: int) -> Any:
        return self.table.get(self.key(service, series, bucket))

    def put(self, service: str, series: str, bucket: int, value: Any, *, keep: int) -> None:
        """Store a bucket; buckets older than `bucket - keep` are deleted with their keys."""
        index = f"{service}|idx|{series}"
        ids = self.table.get(index) or []
        if not ids or (bucket != ids[-1] and bucket not in ids):  # a new bucket: the rare case
            ids = list(ids)
            bisect.insort(ids, bucket)
            cut = bisect.bisect_left(ids, ids[-1] - keep)
            for old in ids[:cut]:
                self.table.pop(self.key(service, series, old), None)
            ids = ids[cut:]
            self.table[index] = ids
            if bucket not in ids:  # arrived too late to be kept
                return
        self.table[self.key(service, series, bucket)] = value

    def items(self, service: str, series: str, *, since: int | None = None) -> Iterator[tuple[int, Any]]:
        for bucket in self.ids(service, series):
            if since is not None and bucket < since:
                continue
            value = self.get(service, series, bucket)
            if value is not None:
                yield bucket, value
