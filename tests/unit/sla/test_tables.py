"""`WriteBack`: the batch overlay over a Faust table (a recording stand-in with the same two methods)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.sla.tables import Tables, WriteBack


class RecordingTable(dict[str, Any]):
    """What WriteBack uses of a Faust table: mapping reads, `data` (the store), `send_changelog`."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[int | None, str, Any]] = []

    @property
    def data(self) -> dict[str, Any]:
        return self

    def send_changelog(self, partition: int | None, key: str, value: Any, value_serializer: str | None = None) -> Any:
        self.sent.append((partition, key, value))
        return Sent()


def pending(sends: list[asyncio.Future[Any]]) -> type[RecordingTable]:
    """A recording table whose changelog writes stay in flight until the test settles their futures (`sends`)."""
    loop = asyncio.get_running_loop()

    class Pending(RecordingTable):
        def send_changelog(self, partition: int | None, key: str, value: Any, value_serializer: str | None = None
                           ) -> Any:
            super().send_changelog(partition, key, value)
            sends.append(loop.create_future())
            return sends[-1]

    return Pending


class Sent:
    """A send the broker acked (what `WriteBack` keeps until `Tables.written`)."""

    def done(self) -> bool:
        return True


def test_each_changed_key_is_sent_once_per_batch_with_its_last_value_and_partition() -> None:
    table = RecordingTable()
    wb = WriteBack(table)
    wb.partition = 2
    for i in range(100):
        wb["shop"] = {"n": i}
    wb.partition = 0
    wb["cart"] = {"n": 1}
    assert table == {} and wb["shop"] == {"n": 99} and wb.get("cart") == {"n": 1} and len(wb) == 2
    assert wb.flush() == 2
    assert table.sent == [(2, "shop", {"n": 99}), (0, "cart", {"n": 1})]
    assert table == {"shop": {"n": 99}, "cart": {"n": 1}} and wb.pending == 0


def test_deletes_send_a_tombstone_only_for_keys_the_table_has() -> None:
    table = RecordingTable()
    table["old"] = [1]
    wb = WriteBack(table)
    wb.partition = 1
    wb["tmp"] = [2]
    del wb["tmp"]  # created and deleted within the batch: nothing to send
    wb.pop("old")
    assert "old" not in wb and wb.get("old") is None and sorted(wb) == []
    with pytest.raises(KeyError):
        wb["old"]
    wb.flush()
    assert table.sent == [(1, "old", None)] and table == {}


async def test_written_waits_for_every_send_and_sends_a_failed_one_again_until_it_is_acked() -> None:
    """A failed changelog write used to raise: the agent crashed, Faust's `take_events` acked the batch's records
    in its `finally`, and their state never reached the changelog. Now the key's current value is sent again, and
    `written` returns only once that is acked (a flush in between, by a timer, does not forget the failed write)."""
    sends: list[asyncio.Future[Any]] = []
    Pending = pending(sends)

    status = Pending()
    tables = Tables(bucket_to_counts=None, service_to_status=None, service_to_maintenance=None,
                    buckets=WriteBack(Pending()), status=WriteBack(status), maintenance=WriteBack(Pending()))
    tables.buckets["a"] = 1
    tables.set_partition(4)
    tables.status["shop"] = {"n": 1}
    assert tables.flush() == 2
    waiting = asyncio.ensure_future(tables.written(retry_s=0.01))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    sends[0].set_result(None)
    sends[1].set_exception(ConnectionError("the broker refused it"))
    tables.status["shop"] = {"n": 2}
    tables.flush()  # a timer's flush: sends n=2, and must not forget the failed write of n=1
    await asyncio.sleep(0.05)
    assert not waiting.done(), "returned while a changelog write had failed"
    assert status.sent[-1] == (4, "shop", {"n": 2})  # sent again: the value the table holds now
    for sent in sends[2:]:
        sent.set_result(None)
    await asyncio.wait_for(waiting, 1)
    assert [k for _, k, _ in status.sent] == ["shop", "shop", "shop"]


async def test_a_failed_delete_is_sent_again_as_a_tombstone() -> None:
    sends: list[asyncio.Future[Any]] = []
    Pending = pending(sends)

    table = Pending()
    table["old"] = [1]
    tables = Tables(bucket_to_counts=None, service_to_status=None, service_to_maintenance=None,
                    buckets=WriteBack(table), status=WriteBack(Pending()), maintenance=WriteBack(Pending()))
    del tables.buckets["old"]
    tables.flush()
    sends[0].set_exception(ConnectionError("gone"))
    waiting = asyncio.ensure_future(tables.written(retry_s=0.01))
    await asyncio.sleep(0.05)
    assert table.sent == [(None, "old", None), (None, "old", None)] and not waiting.done()
    sends[1].set_result(None)
    await asyncio.wait_for(waiting, 1)


async def test_one_agent_waiting_does_not_take_the_writes_another_waits_for() -> None:
    """The batch agents (one per input topic) share the tables: the first to wait must not leave the second
    nothing to wait for, or the second's records would be acked before their changelog writes are."""
    loop = asyncio.get_running_loop()
    send = loop.create_future()

    class Pending(RecordingTable):
        def send_changelog(self, partition: int | None, key: str, value: Any, value_serializer: str | None = None
                           ) -> Any:
            return send

    tables = Tables(bucket_to_counts=None, service_to_status=None, service_to_maintenance=None,
                    buckets=WriteBack(Pending()), status=WriteBack(Pending()), maintenance=WriteBack(Pending()))
    tables.status["shop"] = 1
    tables.flush()
    first, second = asyncio.ensure_future(tables.written()), asyncio.ensure_future(tables.written())
    await asyncio.sleep(0.05)
    assert not first.done() and not second.done()
    first.cancel()  # a stopping agent: the send itself goes on
    await asyncio.sleep(0.01)
    assert not send.cancelled() and not second.done()
    send.set_result(None)
    await asyncio.wait_for(second, 1)


def test_reads_go_to_a_faust_memory_store_without_the_tables_per_read_hooks() -> None:
    """The core reads the tables a few times per record: through the Faust table each read calls its sensor hook
    (and a missing key raises and catches a KeyError), so `WriteBack` reads the store itself."""
    import faust

    app = faust.App("sla-unit-reads", store="memory://", autodiscover=False)
    table = app.Table("reads", default=None)
    table.data["shop"] = {"n": 1}  # as a flush or the changelog recovery stores it
    gets: list[str] = []
    table.on_key_get = gets.append  # type: ignore[method-assign]
    assert table["shop"] == {"n": 1} and gets == ["shop"]  # the hook is there
    gets.clear()
    wb = WriteBack(table)
    assert wb.get("shop") == {"n": 1} and wb["shop"] == {"n": 1} and "shop" in wb and list(wb) == ["shop"]
    assert wb.get("cart") is None and "cart" not in wb
    with pytest.raises(KeyError):
        wb["cart"]
    assert gets == []
