"""What one flags instance holds in memory, shared by the core's jobs: the snapshot every evaluation reads,
the SSE broadcaster, the state of each dependency, and the one way a change lands (`publish_local`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from services.flags.journal import PendingOff
from services.flags.models import FlagRecord
from services.flags.ports import FlagCopy
from services.flags.snapshot import Broadcaster, Snapshot
from shared.flags.evaluator import Resolution, evaluate

__all__ = ["FlagState", "Unavailable"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Unavailable(RuntimeError):
    """Postgres is down: changes cannot be made (evaluation still answers)."""


class FlagState:
    def __init__(self, *, cache: FlagCopy | None, kafka_known: bool) -> None:
        self.cache = cache
        self.snapshot = Snapshot()
        self.broadcaster = Broadcaster()
        self.status: dict[str, str] = {"postgres": "unknown", "redis": "unknown" if cache else "absent",
                                       "kafka": "up" if kafka_known else "unknown"}
        self.loaded_from = "nothing"
        self.pending: list[PendingOff] = []  # turn-offs journaled while the store was down, not yet reconciled
        self.journal_seq = 0  # counts this instance's journal writes: a journal read notes it when it begins
        self._journaled: dict[str, int] = {}  # id -> journal_seq of an entry this instance journaled
        self.peers_subscribed = False  # following the other instances' changes (services/flags/peers.py)
        self.peer_changes = 0
        self.changes_applied = 0  # local and peer changes applied to the snapshot: a load racing one is dropped

    @property
    def ready(self) -> bool:
        """Flags are loaded (Postgres or the Redis copy): answers are real, not an empty snapshot."""
        return self.snapshot.loaded

    def mark(self, name: str, ok: bool, exc: BaseException | None = None) -> None:
        new = "up" if ok else "down"
        if self.status.get(name) != new:
            (logger.info if ok else logger.warning)("%s is %s", name, new, extra={"error": repr(exc) if exc else None})
        self.status[name] = new

    async def guarded(self, aw: Awaitable[T]) -> T:
        """A store call from a request: Postgres away is `Unavailable` (503)."""
        try:
            result = await aw
        except Exception as exc:
            self.mark("postgres", False, exc)
            raise Unavailable("the flag store (Postgres) is not available") from exc
        self.mark("postgres", True)
        return result

    # ---------------------------------------------------------------- pending turn-offs
    def journaled(self, entry: PendingOff) -> None:
        """This instance wrote `entry` to the journal just now: it is pending (once, whatever read saw it)."""
        self.journal_seq += 1
        self._journaled[entry.id] = self.journal_seq
        if all(p.id != entry.id for p in self.pending):
            self.pending.append(entry)

    def journal_read(self, read: list[PendingOff], *, since: int) -> None:
        """What the journal held, read from when `journal_seq` was `since` (the caller took it first). An entry
        this instance journaled after that stays pending though the read may have missed it; one journaled
        before that and missing from the read was reconciled."""
        ids = {p.id for p in read}
        late = [p for p in self.pending if p.id not in ids and self._journaled.get(p.id, 0) > since]
        self.pending = sorted([*read, *late], key=lambda p: p.at)
        self._journaled = {i: n for i, n in self._journaled.items() if n > since or i in ids}

    # ---------------------------------------------------------------- reads (memory only)
    def evaluate(self, key: str, context: Mapping[str, Any]) -> Resolution | None:
        entry = self.snapshot.get(key)
        return evaluate(entry.compiled, context) if entry else None

    def evaluate_all(self, context: Mapping[str, Any]) -> list[tuple[str, Resolution]]:
        return [(k, evaluate(e.compiled, context)) for k, e in sorted(self.snapshot.entries.items())]

    def get(self, key: str) -> FlagRecord | None:
        entry = self.snapshot.get(key)
        return entry.record if entry else None

    def all(self) -> list[FlagRecord]:
        return [e.record for _, e in sorted(self.snapshot.entries.items())]

    # ---------------------------------------------------------------- a change lands
    async def publish_local(self, key: str, after: FlagRecord | None, revision: int) -> None:
        """Memory, SSE subscribers, then the Redis copy and the other instances (best effort, one round trip)."""
        prev = self.snapshot.revision
        self.changes_applied += 1
        self.snapshot.apply(key, after)
        self.snapshot.revision = max(self.snapshot.revision, revision)
        self.broadcast(key, after)
        if self.cache is not None:
            try:
                await self.cache.put(after, key, self.snapshot.revision, prev=prev)
                self.mark("redis", True)
            except Exception as exc:  # noqa: BLE001 - the refresher heals the cache later
                self.mark("redis", False, exc)

    def broadcast(self, key: str, record: FlagRecord | None) -> None:
        self.broadcaster.publish({"type": "flag", "key": key, "revision": self.snapshot.revision,
                                  "flag": record.client_view() if record else None})
