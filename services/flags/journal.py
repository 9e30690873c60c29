"""Turn-offs accepted while the flag store (Postgres) was unavailable, kept until they are reconciled.

A kill must not depend on the store: when Postgres does not answer, `FlagService` applies the kill in
memory (SDKs see it at once over SSE), writes it here, and replays it into Postgres (with its audit
entry and outbox row, hence `flags.changes`) when Postgres is back. Two copies:

- a local append-only JSON-lines file, fsynced before the kill is acknowledged (survives a restart
  of this instance and a Redis outage);
- a Redis hash, best effort, so other instances overlay the same pending kills until reconciled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = ["PendingOff", "KillJournal", "JournalStore"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingOff:
    key: str
    kill: bool
    actor: str
    reason: str
    at: str
    id: str = ""

    @classmethod
    def new(cls, key: str, *, kill: bool, actor: str, reason: str) -> PendingOff:
        return cls(key=key, kill=kill, actor=actor, reason=reason, at=datetime.now(UTC).isoformat(),
                   id=uuid.uuid4().hex)

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


class JournalStore(Protocol):
    """The shared copy (Redis hash). Optional; every call may raise."""

    def hset(self, name: str, key: str, value: str) -> Awaitable[Any]: ...
    def hgetall(self, name: str) -> Awaitable[Any]: ...
    def hdel(self, name: str, *keys: str) -> Awaitable[Any]: ...


class KillJournal:
    def __init__(self, path: str | Path, *, redis: JournalStore | None = None,
                 redis_key: str = "safeguard:flags:pending-off") -> None:
        self.path = Path(path)
        self.redis = redis
        self.redis_key = redis_key
        self._lock = asyncio.Lock()

    async def record(self, entry: PendingOff) -> None:
        """Durable before it returns (fsync). Raises OSError when the file cannot be written."""
        async with self._lock:
            await asyncio.to_thread(self._append, entry.dumps())
        if self.redis is not None:
            try:
                await self.redis.hset(self.redis_key, entry.id, entry.dumps())
            except Exception as exc:  # noqa: BLE001 - the local file is the durable copy
                logger.warning("pending kill not copied to Redis", extra={"error": repr(exc)})

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    async def pending(self) -> list[PendingOff]:
        """Local entries plus those other instances shared through Redis, oldest first."""
        entries = {e.id: e for e in await asyncio.to_thread(self._read)}
        if self.redis is not None:
            try:
                for raw in (await self.redis.hgetall(self.redis_key)).values():
                    e = _parse(raw)
                    if e is not None:
                        entries.setdefault(e.id, e)
            except Exception as exc:  # noqa: BLE001
                logger.debug("pending kills in Redis not readable", extra={"error": repr(exc)})
        return sorted(entries.values(), key=lambda e: e.at)

    def _read(self) -> list[PendingOff]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [e for e in map(_parse, lines) if e is not None]

    async def resolve(self, ids: set[str]) -> None:
        """Forget reconciled entries: rewrite the file without them (atomic replace), drop them from Redis."""
        if not ids:
            return
        async with self._lock:
            await asyncio.to_thread(self._rewrite, ids)
        if self.redis is not None:
            try:
                await self.redis.hdel(self.redis_key, *ids)
            except Exception as exc:  # noqa: BLE001 - a later reconcile finds them already applied
                logger.warning("reconciled kills not removed from Redis", extra={"error": repr(exc)})

    def _rewrite(self, ids: set[str]) -> None:
        keep = [e for e in self._read() if e.id not in ids]
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.writelines(e.dumps() + "\n" for e in keep)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def _parse(raw: str | bytes) -> PendingOff | None:
    try:
        return PendingOff(**json.loads(raw))
    except (ValueError, TypeError):
        logger.warning("ignoring an unreadable pending-kill entry")
        return None
