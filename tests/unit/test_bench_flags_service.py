"""`bench.flags.flags_service`: a private flags service, not a second copy of the stack's instance 1.

`make bench` loads .stack/env, which names the stack's flags instance's own flagd sync port (FLAGS_SYNC_PORT_1)
and kill journal (FLAGS_JOURNAL_PATH). A private service that inherited them tried to listen on the stack's sync
port (and served no flagd sync: the flags_sync bench failed) and read, and resolved, the stack's journal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bench import flags


async def test_the_private_service_has_its_own_sync_port_and_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGS_SYNC_PORT", "8015")
    monkeypatch.setenv("FLAGS_SYNC_PORT_1", "8016")
    monkeypatch.setenv("FLAGS_JOURNAL_PATH", "/work/stack/flags/pending-off.jsonl")
    seen: dict[str, str] = {}

    class Proc:
        def terminate(self) -> None: ...

        def wait(self, timeout: float | None = None) -> int:
            return 0

    def spawn(args: list[str], env: dict[str, str]) -> Any:
        seen.update({**os.environ, **env})  # what the child sees (`_spawn` merges the same way)
        return Proc()

    async def nothing(*_: Any) -> None:
        return None

    monkeypatch.setattr(flags, "_spawn", spawn)
    monkeypatch.setattr(flags, "_wait", nothing)
    monkeypatch.setattr(flags, "_cleanup", nothing)
    async with flags.flags_service("unit", FLAGS_SYNC_PORT="45678"):
        journal = Path(seen["FLAGS_JOURNAL_PATH"])
        assert journal.parent.is_dir()
    assert seen["FLAGS_SYNC_PORT"] == seen["FLAGS_SYNC_PORT_1"] == "45678"
    assert not str(journal).startswith("/work/stack") and not journal.parent.exists()  # removed after
    async with flags.flags_service("unit"):
        pass
    assert seen["FLAGS_SYNC_PORT"] == seen["FLAGS_SYNC_PORT_1"] == "0"  # any free port, never the stack's
