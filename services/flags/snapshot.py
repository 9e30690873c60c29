"""The in-memory, compiled copy of every flag that evaluation reads, and the change fan-out for SSE."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.flags.models import FlagRecord
from shared.flags.evaluator import CompiledFlag, FlagSpec, compile_flag

__all__ = ["Snapshot", "Entry", "Broadcaster", "Direct", "KEEPALIVE", "KEEPALIVE_BYTES", "StreamSlots", "chunk", "etag_for", "sse_event", "end"]


@dataclass(frozen=True, slots=True)
class Entry:
    record: FlagRecord
    compiled: CompiledFlag


def _entry(rec: FlagRecord) -> Entry:
    return Entry(rec, compile_flag(FlagSpec(rec.key, rec.definition, rec.off_variant)))


class Snapshot:
    """Flags by key, compiled once per change. `revision` is the highest change number applied;
    `generation` moves on every load and every change applied (caches of answers key on it)."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.revision = 0
        self.generation = 0
        self.loaded = False

    def replace_all(self, records: Iterable[FlagRecord], revision: int) -> list[str]:
        """Swap in a full load; returns the keys whose definition changed (incl. removed)."""
        new = {r.key: r for r in records}
        changed = [k for k in self.entries if k not in new]
        changed += [k for k, r in new.items() if k not in self.entries or self.entries[k].record.version != r.version]
        self.entries = {k: (self.entries[k] if k not in changed else _entry(r)) for k, r in new.items()}
        self.generation += 1
        self.revision = revision
        self.loaded = True
        return changed

    def apply(self, key: str, record: FlagRecord | None) -> bool:
        """Apply one change if it is newer than what we hold. Returns True when applied."""
        cur = self.entries.get(key)
        if record is None:
            if cur is None:
                return False
            del self.entries[key]
            self.generation += 1
            return True
        if cur is not None and cur.record.revision >= record.revision and cur.record.version >= record.version:
            return False
        self.entries[key] = _entry(record)
        self.generation += 1
        self.revision = max(self.revision, record.revision)
        return True

    def apply_newer(self, key: str, record: FlagRecord | None, revision: int) -> bool:
        """Apply a change another instance made, only if it is newer (by revision) than what we hold for
        `key`: a late or replayed message never brings an older state back. Returns True when applied."""
        cur = self.entries.get(key)
        if record is None:
            if cur is None or cur.record.revision >= revision:
                return False
            del self.entries[key]
        else:
            if cur is not None and (cur.record.revision, cur.record.version) >= (record.revision, record.version):
                return False
            self.entries[key] = _entry(record)
        self.generation += 1
        self.revision = max(self.revision, revision)
        return True

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def client_payload(self) -> dict[str, Any]:
        return {"revision": self.revision, "flags": {k: e.record.client_view() for k, e in self.entries.items()}}


def etag_for(revision: int, context: Mapping[str, Any], count: int) -> str:
    """Changes when any flag changes (revision, count) or the context changes."""
    body = json.dumps(context, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(f"{revision}:{count}:{body}".encode()).hexdigest()[:32] + '"'


def sse_event(event: str, data: Any, revision: int) -> bytes:
    """One server-sent event: `event: <event>`, `id: <revision>`, the data as compact JSON."""
    return f"event: {event}\nid: {revision}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


KEEPALIVE: dict[str, Any] = {"type": "keep-alive"}  # the same object every time: test it with `is`
KEEPALIVE_BYTES = b": keep-alive\n\n"


def end(q: asyncio.Queue[dict[str, Any] | None]) -> None:
    """Wake a subscriber's writer with the end marker (None), dropping what it has not sent yet."""
    try:
        q.put_nowait(None)
    except asyncio.QueueFull:
        while not q.empty():
            q.get_nowait()
        q.put_nowait(None)


def chunk(data: bytes) -> bytes:
    """`data` as one chunk of an HTTP/1.1 chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


_KEEPALIVE_CHUNK = chunk(KEEPALIVE_BYTES)


class Direct:
    """A stream whose events the Broadcaster writes straight to its connection, each framed once as an HTTP/1.1
    chunk for every such stream: no queue, no coroutine woken per event (docs/kill-fanout.md). `ended` is done when
    the Broadcaster ended it: too slow a reader (the connection is aborted), or the service closing (the body is
    ended, then the connection closed); the client reconnects and bootstraps again, as with a queue."""

    __slots__ = ("transport", "ended")

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish(self, *, abort: bool = False) -> None:
        if not self.ended.done():
            self.ended.set_result(None)
        t = self.transport
        if abort:
            t.abort()
        elif not t.is_closing():
            t.write(b"0\r\n\r\n")
            t.close()


class Broadcaster:
    """Fan-out of change messages to SSE subscribers; a slow subscriber is dropped, never waited for.

    Every subscriber's queue gets the same message object; `encoded(message)` gives its SSE `flag` event,
    serialized once per published message (the bytes of the last `kept` messages are kept), not once per
    subscriber. A subscriber made with `keepalive=True` also gets `KEEPALIVE` every `keepalive_s`, from one
    timer for all of them, so a stream body needs no timer of its own per event (a timeout re-armed on
    every event cost about 20 us per subscriber per event: docs/kill-fanout.md).

    A `Direct` stream (`attach`) gets the event's bytes written to its connection at once, by `publish` itself;
    one whose connection holds more than `direct_limit` bytes unsent is too slow, and is dropped."""

    def __init__(self, maxsize: int = 1000, *, kept: int = 64, keepalive_s: float = 15.0,
                 direct_limit: int = 64 * 1024) -> None:
        self._subs: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._ticked: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._direct: set[Direct] = set()
        self._direct_limit = direct_limit
        self._maxsize = maxsize
        self._kept = kept
        self._encoded: OrderedDict[int, tuple[dict[str, Any], bytes]] = OrderedDict()
        self._keepalive_s = keepalive_s
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, *, keepalive: bool = False) -> asyncio.Queue[dict[str, Any] | None]:
        """A new subscriber's queue (called on the event loop). `keepalive`: also `KEEPALIVE` now and then."""
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(self._maxsize)
        self._subs.add(q)
        if keepalive:
            self._ticked.add(q)
            self._arm()
        return q

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        if self._timer is None or self._timer_loop is not loop:  # none yet, or armed on a loop now gone
            self._timer, self._timer_loop = loop.call_later(self._keepalive_s, self._tick), loop

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subs.discard(q)
        self._ticked.discard(q)

    def hand_over(self, q: asyncio.Queue[dict[str, Any] | None], direct: Direct) -> None:
        """Turn queue `q`'s subscriber into `direct`: what `q` holds is written first, then every event as it comes
        (or `direct` is ended, if `q` was)."""
        self.unsubscribe(q)
        while not q.empty():
            msg = q.get_nowait()
            if msg is None:
                direct.finish()
                return
            if msg is not KEEPALIVE:
                direct.transport.write(chunk(self.encoded(msg)))
        self._direct.add(direct)
        self._arm()

    def detach(self, direct: Direct) -> None:
        self._direct.discard(direct)

    def _tick(self) -> None:
        self._timer = None
        for q in list(self._ticked):
            if q.empty():  # one with changes waiting is not idle: no keep-alive needed
                q.put_nowait(KEEPALIVE)
        self._write(_KEEPALIVE_CHUNK)
        if self._ticked or self._direct:
            self._timer = asyncio.get_running_loop().call_later(self._keepalive_s, self._tick)

    def _write(self, framed: bytes) -> None:
        slow = []
        for d in self._direct:
            t = d.transport
            if t.is_closing() or t.get_write_buffer_size() > self._direct_limit:
                slow.append(d)
            else:
                t.write(framed)
        for d in slow:
            self._direct.discard(d)
            d.finish(abort=True)

    @property
    def subscribers(self) -> int:
        return len(self._subs) + len(self._direct)

    @property
    def direct(self) -> int:
        """How many of the subscribers are `Direct` streams."""
        return len(self._direct)

    def publish(self, message: dict[str, Any]) -> None:
        """Hand `message` to every subscriber now (put_nowait: no await, no per-subscriber task); write it to
        every `Direct` stream."""
        for q in list(self._subs):
            try:
                q.put_nowait(message)
            except asyncio.QueueFull:  # too slow: drop it; the client reconnects and bootstraps again
                self.unsubscribe(q)
                end(q)
        if self._direct:
            self._write(chunk(self.encoded(message)))

    def encoded(self, message: dict[str, Any]) -> bytes:
        """The SSE `flag` event of a published `message` (id: its revision), the same bytes for every subscriber."""
        found = self._encoded.get(id(message))
        if found is not None and found[0] is message:
            return found[1]
        data = sse_event("flag", message, message["revision"])
        self._encoded[id(message)] = (message, data)  # the message is held, so its id is not reused meanwhile
        while len(self._encoded) > self._kept:
            self._encoded.popitem(last=False)
        return data

    def close(self) -> None:
        for q in list(self._subs):
            try:
                q.put_nowait(None)
            except asyncio.QueueFull:
                pass
        self._subs.clear()
        self._ticked.clear()
        for d in list(self._direct):
            d.finish()
        self._direct.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class StreamSlots:
    """Caps on open SSE streams: `max_per_client` per client key (then 429), `max_total` in all (then 503)."""

    def __init__(self, *, max_total: int, max_per_client: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self._open: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self._open.values())

    def take(self, client: str) -> tuple[int, str] | None:
        """Take a slot for `client`; or (status, why) when none is free."""
        if self._open[client] >= self.max_per_client:
            return 429, f"this client already has {self._open[client]} open streams (at most {self.max_per_client})"
        if self.total >= self.max_total:
            return 503, f"the service serves its maximum of {self.max_total} streams"
        self._open[client] += 1
        return None

    def give_back(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]
