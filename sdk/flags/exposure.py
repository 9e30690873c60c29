"""Exposures: which targeting keys saw which flag, reported so the flags service can say how many of the
last hour's users a rollout reaches (like Unleash's client metrics, smaller).

An exposure is (flag, key hash, in): the targeting key is hashed here (`key_hash`), so raw user ids never
leave the app. `in` means the evaluation served something other than the flag's off variant (for a
rollout: the user's bucket got the on variant); an evaluation without a targeting key, or that failed or
fell back to the code default, is no exposure.

`ExposureBuffer` keeps each distinct exposure once per minute, bounded (past `max_entries` new ones are
dropped and counted); `ExposureReporter` posts the buffer to `POST /api/flags/_exposures` every
`interval_s` in the background. A failed post is dropped and counted, never retried or raised.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from shared.flags.evaluator import CODE_DEFAULT, CompiledFlag, Resolution

__all__ = ["key_hash", "is_in", "ExposureBuffer", "ExposureReporter", "EXPOSURES_PATH"]

logger = logging.getLogger(__name__)
EXPOSURES_PATH = "/api/flags/_exposures"


@functools.lru_cache(maxsize=65_536)  # the same users evaluate again and again; hashing was half the call
def key_hash(targeting_key: str) -> str:
    """The pseudonymous id of a targeting key: the first 32 hex digits of its SHA-256 (same in the service)."""
    return hashlib.sha256(targeting_key.encode()).hexdigest()[:32]


def is_in(flag: CompiledFlag, r: Resolution) -> bool:
    """The evaluation served the feature: a variant other than the flag's off variant."""
    return r.variant is not None and r.variant != flag.off_variant


class ExposureBuffer:
    """Distinct (flag, key hash, in) seen since the last `take`, each sent once per minute. Thread-safe:
    apps evaluate on their own threads while the reporter runs on the client's loop."""

    def __init__(self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.max_entries, self.clock = max_entries, clock
        self.dropped = 0
        self._minute = -1
        self._sent: set[tuple[str, str, bool]] = set()
        self._pending: set[tuple[str, str, bool]] = set()
        self._lock = threading.Lock()

    def saw(self, flag: CompiledFlag, context: Mapping[str, Any] | None, r: Resolution) -> None:
        tk = context.get("targetingKey") if context else None
        if not isinstance(tk, str) or not tk or r.error_code is not None or r.value is CODE_DEFAULT:
            return
        item = (flag.key, key_hash(tk), r.variant is not None and r.variant != flag.off_variant)
        minute = int(self.clock() // 60)
        if minute == self._minute and (item in self._sent or item in self._pending):
            return  # already kept this minute (read without the lock: a miss only falls through to it)
        self._keep(item, minute)

    def add(self, flag: str, hashed: str, in_: bool) -> None:
        self._keep((flag, hashed, in_), int(self.clock() // 60))

    def _keep(self, item: tuple[str, str, bool], minute: int) -> None:
        with self._lock:
            if minute != self._minute:
                self._sent = set()  # before the minute: a reader without the lock never pairs it with old sets
                self._minute = minute
            if item in self._sent or item in self._pending:
                return
            if len(self._pending) + len(self._sent) >= self.max_entries:
                self.dropped += 1
                return
            self._pending.add(item)

    def take(self) -> list[dict[str, Any]]:
        """What to send now; marked sent for the rest of this minute."""
        with self._lock:
            items, self._pending = self._pending, set()
            self._sent |= items
        return [{"flag": f, "key_hash": h, "in": i} for f, h, i in sorted(items)]


class ExposureReporter:
    """Posts the buffer every `interval_s` (at most `batch` exposures a post)."""

    def __init__(self, buffer: ExposureBuffer, *, interval_s: float = 10.0, batch: int = 5_000) -> None:
        self.buffer, self.interval_s, self.batch = buffer, interval_s, batch
        self.sent = 0
        self.failed = 0

    async def flush(self, http: httpx.AsyncClient) -> None:
        items = self.buffer.take()
        for start in range(0, len(items), self.batch):
            chunk = items[start:start + self.batch]
            try:
                r = await http.post(EXPOSURES_PATH, json=chunk, timeout=5.0)
                r.raise_for_status()
                self.sent += len(chunk)
            except httpx.HTTPError:  # counted and dropped: exposures are a hint, never worth a retry storm
                self.failed += len(chunk)

    async def run(self, http: httpx.AsyncClient) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush(http)
            except Exception:  # noqa: BLE001 - one bad round must not end reporting
                logger.warning("exposure report failed", exc_info=True)
