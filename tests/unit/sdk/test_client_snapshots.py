"""Finding 1 of the fail-safe issue: an unloaded or older snapshot never shrinks what the SDK knows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sdk.flags.client import FlagClient


def _view(key: str, *, version: int, state: str = "ENABLED") -> dict[str, Any]:
    return {"key": key, "version": version, "offVariant": "off",
            "definition": {"state": state, "variants": {"on": True, "off": False}, "defaultVariant": "on"}}


async def test_an_empty_unloaded_snapshot_keeps_a_killed_flag_off(tmp_path: Path) -> None:
    cache = tmp_path / "flags.json"
    client = FlagClient("http://127.0.0.1:1", cache_path=cache)
    try:
        client._handle("snapshot", {"revision": 7, "flags": {"gamification": _view("gamification", version=3,
                                                                                          state="DISABLED")}})
        assert client.get_boolean("gamification", True) is False
        # a flags instance that started with Postgres and Redis unreachable
        client._handle("snapshot", {"revision": 0, "flags": {}})
        assert client.get_boolean("gamification", True) is False
        assert "gamification" in json.loads(cache.read_text())["flags"]
    finally:
        await client.stop()


async def test_an_older_revision_snapshot_is_ignored_a_newer_one_applies(tmp_path: Path) -> None:
    client = FlagClient("http://127.0.0.1:1", cache_path=tmp_path / "f.json")
    try:
        client._handle("snapshot", {"revision": 9, "flags": {"a": _view("a", version=2, state="DISABLED"),
                                                             "b": _view("b", version=1)}})
        client._handle("snapshot", {"revision": 4, "flags": {"a": _view("a", version=1)}})
        assert client.get_boolean("a", True) is False and client.keys() == ["a", "b"]
        client._handle("snapshot", {"revision": 5, "flags": {}, "loaded": False})
        assert client.keys() == ["a", "b"]
        client._handle("snapshot", {"revision": 10, "flags": {"a": _view("a", version=3)}})  # b deleted later
        assert client.keys() == ["a"] and client.get_boolean("a", False) is True
    finally:
        await client.stop()


async def test_restart_from_the_disk_cache_then_an_empty_snapshot(tmp_path: Path) -> None:
    cache = tmp_path / "flags.json"
    cache.write_text(json.dumps({"revision": 3, "flags": {"g": _view("g", version=2, state="DISABLED")}}))
    client = FlagClient("http://127.0.0.1:1", cache_path=cache)
    try:
        client._load_file()
        client._handle("snapshot", {"revision": 0, "flags": {}})
        assert client.get_boolean("g", True) is False
        assert json.loads(cache.read_text())["flags"]["g"]["version"] == 2
    finally:
        await client.stop()
