"""The SSE fan-out: one message object to every subscriber, its event serialized once for all of them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from services.flags.snapshot import KEEPALIVE, Broadcaster, Direct, chunk, end, sse_event


def _message(revision: int) -> dict[str, Any]:
    return {"type": "flag", "key": "k", "revision": revision,
            "flag": {"key": "k", "version": 3, "definition": {"state": "DISABLED"}}}


async def test_every_subscriber_gets_the_same_bytes_serialized_once() -> None:
    b = Broadcaster()
    queues = [b.subscribe() for _ in range(100)]
    msg = _message(7)
    b.publish(msg)
    got = [m for q in queues if (m := q.get_nowait()) is not None]
    assert len(got) == 100 and all(m is msg for m in got)
    first = b.encoded(got[0])
    assert all(b.encoded(m) is first for m in got)  # not serialized again per subscriber
    data = json.dumps(msg, separators=(",", ":"))
    assert first == f"event: flag\nid: 7\ndata: {data}\n\n".encode()


async def test_each_message_has_its_own_event_and_only_the_last_are_kept() -> None:
    b = Broadcaster(kept=2)
    one, two, three = _message(1), _message(2), _message(3)
    encoded = [b.encoded(m) for m in (one, two, three)]
    assert [e.split(b"\n", 2)[1] for e in encoded] == [b"id: 1", b"id: 2", b"id: 3"]
    assert b.encoded(three) is encoded[2] and b.encoded(two) is encoded[1]
    again = b.encoded(one)  # dropped from the kept ones: serialized anew, the same bytes
    assert again == encoded[0] and again is not encoded[0]


async def test_an_equal_message_is_not_taken_for_a_kept_one() -> None:
    b = Broadcaster()
    first = b.encoded(_message(5))
    other = _message(5)
    other["key"] = "other"
    assert b.encoded(other) != first
    assert b'"key":"other"' in b.encoded(other)


async def test_a_full_subscriber_is_dropped_and_told_to_go() -> None:
    b = Broadcaster(maxsize=2)
    slow, fast = b.subscribe(), b.subscribe()
    for rev in (1, 2, 3):
        b.publish(_message(rev))
        fast.get_nowait()
    assert b.subscribers == 1
    assert slow.get_nowait() is None and slow.empty()


def test_sse_event_format() -> None:
    assert sse_event("snapshot", {"a": [1, 2]}, 9) == b'event: snapshot\nid: 9\ndata: {"a":[1,2]}\n\n'


async def test_keepalive_subscribers_get_a_tick_from_one_timer() -> None:
    b = Broadcaster(keepalive_s=0.05)
    plain, idle, busy = b.subscribe(), b.subscribe(keepalive=True), b.subscribe(keepalive=True)
    b.publish(_message(1))
    idle.get_nowait()  # busy keeps its change waiting: it is not idle, so it gets no keep-alive
    await asyncio.sleep(0.08)
    assert idle.get_nowait() is KEEPALIVE and idle.empty()
    assert busy.qsize() == 1 and plain.qsize() == 1
    await asyncio.sleep(0.05)
    assert idle.get_nowait() is KEEPALIVE  # again, while subscribed
    b.unsubscribe(idle)
    b.unsubscribe(busy)
    await asyncio.sleep(0.12)
    assert idle.empty() and b._timer is None  # noqa: SLF001 - the timer stops with its last subscriber


async def test_close_ends_every_stream_and_stops_the_timer() -> None:
    b = Broadcaster(keepalive_s=0.05)
    q = b.subscribe(keepalive=True)
    b.close()
    assert q.get_nowait() is None and b.subscribers == 0
    await asyncio.sleep(0.08)
    assert q.empty()


_KEPT: list[asyncio.StreamWriter] = []  # a StreamWriter closes its transport when collected


async def _connection() -> tuple[asyncio.StreamReader, asyncio.WriteTransport, asyncio.Server]:
    """A real loopback connection: the server side's transport (what a Direct stream writes to), the client's
    reader."""
    accepted: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()
    server = await asyncio.start_server(lambda _r, w: accepted.set_result(w), "127.0.0.1", 0)
    reader, client = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    writer = await asyncio.wait_for(accepted, 3)
    _KEPT.extend((client, writer))
    transport = writer.transport
    assert isinstance(transport, asyncio.WriteTransport)
    return reader, transport, server


async def test_a_handed_over_stream_gets_what_its_queue_held_then_each_event_as_one_chunk() -> None:
    b = Broadcaster()
    q = b.subscribe(keepalive=True)
    b.publish(_message(1))  # between the snapshot and the switch
    reader, transport, server = await _connection()
    try:
        b.hand_over(q, Direct(transport))
        assert b.subscribers == 1 and b.direct == 1
        b.publish(_message(2))
        want = chunk(sse_event("flag", _message(1), 1)) + chunk(sse_event("flag", _message(2), 2))
        assert await asyncio.wait_for(reader.readexactly(len(want)), 3) == want
    finally:
        b.close()
        server.close()
    assert await asyncio.wait_for(reader.read(), 3) == b"0\r\n\r\n"  # close: the body's end, then EOF


async def test_a_queue_already_ended_ends_the_stream_it_hands_over() -> None:
    b = Broadcaster()
    q = b.subscribe()
    end(q)
    reader, transport, server = await _connection()
    direct = Direct(transport)
    b.hand_over(q, direct)
    assert direct.ended.done() and b.subscribers == 0
    assert await asyncio.wait_for(reader.read(), 3) == b"0\r\n\r\n"
    server.close()
