"""`WriteBack`: the batch overlay over a Faust table (a recording stand-in with the same two methods)."""

from __future__ import annotations

from typing import Any

import pytest

from services.sla.tables import WriteBack


class RecordingTable(dict[str, Any]):
    """What WriteBack uses of a Faust table: mapping reads, `data` (the store), `send_changelog`."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[int | None, str, Any]] = []

    @property
    def data(self) -> dict[str, Any]:
        return self

    def send_changelog(self, partition: int | None, key: str, value: Any, value_serializer: str | None = None) -> None:
        self.sent.append((partition, key, value))


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
