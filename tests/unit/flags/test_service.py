"""The kill-switch core (services/flags/service.py and its jobs) against the in-memory store and cache
(services/flags/memory.py): kill, kill-new, enable/disable, rollout, delete, a peer's change, a load that
races a kill, and a kill while the store is down (journaled, then reconciled). The same paths run on real
Postgres, Redis and Kafka in tests/integration/flags/."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.flags import rules
from services.flags.journal import KillJournal
from services.flags.memory import MemoryCache, MemoryRepository
from services.flags.models import DefinitionError, FlagCreate, FlagRecord, ScheduleCreate
from services.flags.ports import Change, peer_message
from services.flags.service import FlagService, Unavailable
from shared.events import Event, FlagChanged, FlagSnapshot
from shared.ports import Headers
from shared.testing import InMemoryPublisher


class RawMemoryPublisher(InMemoryPublisher):
    """Also takes raw records (the relay's tombstone of a deleted flag)."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[tuple[str, bytes | None, bytes | None]] = []

    async def publish_raw(self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        self.raw.append((topic, key, value))


def _service(tmp_path: Path | None = None, **over: Any) -> FlagService:
    journal = KillJournal(tmp_path / "pending-off.jsonl") if tmp_path is not None else None
    return FlagService(**{"repo": MemoryRepository(), "cache": MemoryCache(), "journal": journal,
                          "store_timeout_s": 0.5, **over})


def _repo(svc: FlagService) -> MemoryRepository:
    assert isinstance(svc.repo, MemoryRepository)
    return svc.repo


def _cache(svc: FlagService) -> MemoryCache:
    assert isinstance(svc.cache, MemoryCache)
    return svc.cache


async def _on_flag(svc: FlagService, key: str, *, new: bool = True) -> FlagRecord:
    return await svc.create(FlagCreate.model_validate({"key": key, "state": "ENABLED", "new": new}), actor="admin:t")


def _served(svc: FlagService, key: str) -> Any:
    r = svc.evaluate(key, {"targetingKey": "user-1"})
    assert r is not None
    return r.value


async def test_a_kill_serves_off_everywhere_and_is_audited() -> None:
    svc = _service()
    await svc.load()
    await _on_flag(svc, "checkout")
    queue = svc.broadcaster.subscribe()
    assert _served(svc, "checkout") is True

    killed = await svc.set_enabled("checkout", enabled=False, actor="admin:ann", reason="errors", kill=True)

    assert killed.killed and killed.definition["state"] == "DISABLED" and _served(svc, "checkout") is False
    stored = (await _repo(svc).load_all())[0]
    assert stored.killed and stored.version == 2 and stored.revision == svc.snapshot.revision
    entry = (await svc.audit("checkout", limit=1, before_id=None))[0]
    assert (entry.action, entry.actor, entry.reason) == ("killed", "admin:ann", "errors")
    assert entry.before is not None and entry.before["killed"] is False
    assert _cache(svc).records["checkout"].killed and _cache(svc).rev == svc.snapshot.revision
    assert json.loads(_cache(svc).sent[-1])["record"]["killed"] is True  # the other instances hear of it
    message = queue.get_nowait()
    assert message is not None and message["key"] == "checkout" and message["flag"]["definition"]["state"] == "DISABLED"


async def test_enable_and_disable() -> None:
    svc = _service()
    await svc.load()
    await svc.create(FlagCreate(key="f"), actor="admin:t")
    assert _served(svc, "f") is False
    on = await svc.set_enabled("f", enabled=True, actor="admin:t", reason="go")
    assert on.definition["state"] == "ENABLED" and _served(svc, "f") is True
    off = await svc.set_enabled("f", enabled=False, actor="admin:t", reason="stop")
    assert not off.killed and _served(svc, "f") is False
    assert [e.action for e in await svc.audit("f", limit=10, before_id=None)] == ["disabled", "enabled", "created"]
    with pytest.raises(rules.FlagNotFound):
        await svc.set_enabled("nope", enabled=False, actor="admin:t", reason="")


async def test_kill_new_kills_only_new_flags_that_are_on() -> None:
    svc = _service()
    await svc.load()
    await _on_flag(svc, "b-new")
    await _on_flag(svc, "a-new")
    await _on_flag(svc, "old", new=False)
    await svc.create(FlagCreate(key="new-but-off"), actor="admin:t")

    assert await svc.kill_new(actor="recovery", reason="error rate") == ["a-new", "b-new"]

    assert [_served(svc, k) for k in ("a-new", "b-new", "old")] == [False, False, True]
    assert {r.key for r in await _repo(svc).load_all() if r.killed} == {"a-new", "b-new"}
    assert (await svc.audit("new-but-off", limit=5, before_id=None))[0].action == "created"


async def test_kill_new_is_all_or_nothing() -> None:
    """A new flag that cannot be turned off (no off variant) refuses the whole kill: none is half-done."""
    svc = _service()
    repo = _repo(svc)
    await _on_flag(svc, "a-new")
    repo.flags["b-colour"] = FlagRecord(key="b-colour", new=True, revision=99, definition={
        "state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"})
    await svc.load()
    entries = len(repo.log)

    with pytest.raises(DefinitionError):
        await svc.kill_new(actor="recovery", reason="error rate")

    assert len(repo.log) == entries and not any(r.killed for r in await repo.load_all())
    assert _served(svc, "a-new") is True


async def test_rollout_and_delete() -> None:
    svc = _service()
    await svc.load()
    await _on_flag(svc, "f")
    rolled = await svc.rollout("f", 30, actor="admin:t", reason="ramp")
    assert rolled.rollout_percent == 30 and rolled.definition["targeting"] == rules.rollout_targeting("on", "off", 30)

    await svc.delete("f", actor="admin:t", reason="done")

    assert svc.get("f") is None and await _repo(svc).load_all() == []
    assert json.loads(_cache(svc).sent[-1])["record"] is None and "f" not in _cache(svc).records
    assert [e.action for e in await svc.audit("f", limit=5, before_id=None)] == ["deleted", "rollout", "created"]
    with pytest.raises(rules.FlagNotFound):
        await svc.delete("f", actor="admin:t", reason="again")
    again = await _on_flag(svc, "f")
    assert again.version == 4  # a flag created again goes on from its deleted version


async def test_a_peers_change_applies_when_newer() -> None:
    svc = _service()
    await svc.load()
    flag = await _on_flag(svc, "f")
    rev = svc.snapshot.revision
    killed = flag.model_copy(update={"killed": True, "version": 2, "revision": rev + 1,
                                     "definition": {**flag.definition, "state": "DISABLED"}})

    assert svc.apply_peer(peer_message(origin="other", key="f", record=killed, revision=rev + 1, prev=rev)) is False
    assert _served(svc, "f") is False and svc.peer_changes == 1
    older = peer_message(origin="other", key="f", record=flag, revision=rev, prev=rev - 1)
    assert svc.apply_peer(older) is False and _served(svc, "f") is False  # a late message never undoes a kill
    mine = peer_message(origin=_cache(svc).origin, key="f", record=None, revision=rev + 5, prev=rev + 1)
    assert svc.apply_peer(mine) is False and svc.get("f") is not None  # its own message is skipped
    missed = peer_message(origin="other", key="g", record=None, revision=rev + 9, prev=rev + 8)
    assert svc.apply_peer(missed) is True  # a change before it was missed: the caller reloads
    assert svc.apply_peer(b"{not json") is False


@pytest.mark.parametrize("then", ["kill", "kill-new"])
async def test_a_load_racing_a_kill_is_dropped_and_done_again(then: str) -> None:
    svc = _service()
    await svc.load()
    await _on_flag(svc, "f")
    repo = _repo(svc)
    read, go = asyncio.Event(), asyncio.Event()
    original = repo.load_all

    async def held_back() -> list[FlagRecord]:
        records = await original()  # the store as it was before the kill
        read.set()
        await go.wait()
        return records

    repo.load_all = held_back  # type: ignore[method-assign]
    load = asyncio.create_task(svc.load())
    await read.wait()
    repo.load_all = original  # type: ignore[method-assign]
    if then == "kill":
        await svc.set_enabled("f", enabled=False, actor="admin:t", reason="", kill=True)
    else:
        await svc.kill_new(actor="admin:t", reason="")
    go.set()
    await load

    assert svc.get("f").killed and svc.reload_due  # type: ignore[union-attr]
    assert _cache(svc).records["f"].killed  # the stale load did not refill the copy either
    await svc.refresh()
    assert not svc.reload_due and svc.loaded_from == "postgres" and svc.get("f").killed


async def test_a_kill_while_the_store_is_down_is_journaled_then_reconciled(tmp_path: Path) -> None:
    svc = _service(tmp_path)
    await svc.load()
    await _on_flag(svc, "f")
    repo = _repo(svc)
    repo.down = True

    killed = await svc.set_enabled("f", enabled=False, actor="admin:ann", reason="fire", kill=True)

    assert killed.killed and _served(svc, "f") is False and _cache(svc).records["f"].killed
    assert [p.key for p in svc.pending] == ["f"] and svc.status["postgres"] == "down"
    with pytest.raises(Unavailable):  # turning on needs the store
        await svc.set_enabled("f", enabled=True, actor="admin:t", reason="")
    await svc.load()  # the copy is loaded; the journaled kill still wins
    assert svc.loaded_from == "redis" and _served(svc, "f") is False

    repo.down = False
    assert await svc.reconcile() == 1

    assert svc.pending == [] and await KillJournal(tmp_path / "pending-off.jsonl").pending() == []
    stored = (await repo.load_all())[0]
    entry = (await svc.audit("f", limit=1, before_id=None))[0]
    assert stored.killed and entry.actor == "admin:ann" and "while the flag store was down" in entry.reason
    assert svc.loaded_from == "postgres" and _served(svc, "f") is False


async def _journaling(tmp_path: Path, key: str) -> tuple[FlagService, KillJournal]:
    """A loaded service with flag `key` on, its store gone: a kill now is journaled."""
    svc = _service(tmp_path)
    await svc.load()
    await _on_flag(svc, key)
    _repo(svc).down = True
    journal = svc.changes.journal
    assert journal is not None
    return svc, journal


async def test_a_reload_while_a_kill_is_journaled_does_not_count_it_twice(tmp_path: Path) -> None:
    """CI, 2026-12-01: /healthz said 2 pending turn-offs after one kill. The kill's journal write awaits (the file,
    then its Redis copy); a reload then (Postgres had just gone) read the journal, kill included, and the kill
    added its entry again."""
    svc, journal = await _journaling(tmp_path, "f")
    record = journal.record

    async def record_then_a_reload(entry: Any) -> None:
        await record(entry)
        await svc.load()  # what the refresher may run while the kill awaits its Redis copy

    journal.record = record_then_a_reload  # type: ignore[method-assign]
    await svc.set_enabled("f", enabled=False, actor="admin:ann", reason="fire", kill=True)
    assert [p.key for p in svc.pending] == ["f"]


async def test_a_kill_journaled_while_a_reload_reads_the_journal_stays_pending(tmp_path: Path) -> None:
    """The reverse order of the race above: a reload read the journal before the kill wrote it, and set what it
    read after the kill had added its entry, which dropped the kill from memory (/healthz undercounted, and the
    next reload's overlay was the only thing serving it off)."""
    svc, journal = await _journaling(tmp_path, "f")
    pending = journal.pending
    kill: asyncio.Task[Any] | None = None

    async def read_then_a_kill() -> Any:
        nonlocal kill
        read = await pending()
        kill = asyncio.create_task(svc.set_enabled("f", enabled=False, actor="admin:ann", reason="fire", kill=True))
        await kill
        return read

    journal.pending = read_then_a_kill  # type: ignore[method-assign]
    await svc.load()
    assert kill is not None and kill.done()
    assert [p.key for p in svc.pending] == ["f"]
    journal.pending = pending  # type: ignore[method-assign]
    await svc.load()
    assert [p.key for p in svc.pending] == ["f"]


async def test_a_kill_journaled_while_reconcile_replays_stays_pending(tmp_path: Path) -> None:
    """Reconcile reads the journal, replays it into the store (awaits), then sets what is left: a kill journaled
    meanwhile (the store was away again) must stay pending, and the one it replayed must not."""
    svc = _service(tmp_path)
    await svc.load()
    await _on_flag(svc, "a")
    await _on_flag(svc, "b")
    repo = _repo(svc)
    repo.down = True
    await svc.set_enabled("a", enabled=False, actor="admin:ann", reason="fire", kill=True)
    repo.down = False
    journal = svc.changes.journal
    assert journal is not None
    resolve = journal.resolve

    async def a_kill_then_resolve(ids: Any) -> None:
        repo.down = True
        await svc.set_enabled("b", enabled=False, actor="admin:bob", reason="fire", kill=True)
        repo.down = False
        await resolve(ids)

    journal.resolve = a_kill_then_resolve  # type: ignore[method-assign]
    assert await svc.changes.reconcile() == 1
    assert [p.key for p in svc.pending] == ["b"]


async def test_kill_new_while_the_store_is_down_kills_what_memory_knows(tmp_path: Path) -> None:
    svc = _service(tmp_path)
    await svc.load()
    await _on_flag(svc, "a")
    await _on_flag(svc, "old", new=False)
    _repo(svc).down = True
    assert await svc.kill_new(actor="recovery", reason="error rate") == ["a"]
    assert _served(svc, "a") is False and _served(svc, "old") is True and len(svc.pending) == 1


async def test_without_a_journal_a_kill_needs_the_store() -> None:
    svc = _service()
    await svc.load()
    await _on_flag(svc, "f")
    _repo(svc).down = True
    with pytest.raises(Unavailable):
        await svc.set_enabled("f", enabled=False, actor="admin:t", reason="", kill=True)
    assert _served(svc, "f") is True


async def test_a_store_that_hangs_is_unavailable_after_the_timeout(tmp_path: Path) -> None:
    svc = _service(tmp_path, store_timeout_s=0.05)
    await svc.load()
    await _on_flag(svc, "f")
    repo = _repo(svc)
    async with repo.unit_of_work():  # holds the store's lock, as a stuck transaction would
        killed = await svc.set_enabled("f", enabled=False, actor="admin:t", reason="", kill=True)
        assert killed.killed and len(svc.pending) == 1
        with pytest.raises(Unavailable):
            await svc.create(FlagCreate(key="g"), actor="admin:t")


async def test_the_relay_publishes_changes_in_order_and_a_tombstone_on_delete() -> None:
    pub = RawMemoryPublisher()
    svc = _service(publisher=pub, topic_prefix="t.")
    await svc.load()
    await _on_flag(svc, "f")
    await svc.set_enabled("f", enabled=False, actor="admin:t", reason="", kill=True)
    await svc.delete("f", actor="admin:t", reason="")

    assert await svc.publish_pending() == 3

    changed = [e for e in pub.of_type(FlagChanged) if isinstance(e, FlagChanged)]
    assert [e.action for e in changed] == ["created", "killed", "deleted"]
    snaps: list[Event] = pub.of_type(FlagSnapshot)
    assert len(snaps) == 2 and pub.raw == [("t." + FlagSnapshot.topic, b"f", None)]
    assert await svc.publish_pending() == 0


async def test_a_row_kafka_refuses_for_good_is_set_aside() -> None:
    pub = RawMemoryPublisher()
    pub.fail_with = ValueError("too large")
    svc = _service(publisher=pub)
    await svc.load()
    await _on_flag(svc, "f")
    assert await svc.publish_pending() == 0
    assert svc.outbox_failed == 1 and list(_repo(svc).failed) == [1]


async def test_a_due_schedule_runs_as_the_scheduler() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    svc = _service(clock=lambda: now)
    await svc.load()
    await _on_flag(svc, "f")
    body = ScheduleCreate.model_validate({"action": "kill", "at": (now - timedelta(seconds=1)).isoformat()})
    await svc.schedule("f", body, actor="admin:ann")

    assert await svc.run_due() == 1

    assert _served(svc, "f") is False
    assert (await svc.audit("f", limit=1, before_id=None))[0].actor == "scheduler:admin:ann"
    assert [s.status for s in await svc.schedules("f")] == ["done"]
    assert await svc.run_due() == 0


async def test_a_unit_of_work_not_committed_writes_nothing() -> None:
    repo = MemoryRepository()
    with pytest.raises(RuntimeError):
        async with repo.unit_of_work() as uow:
            rec = rules.create(None, FlagCreate(key="f"))
            await uow.flags.save("f", Change("created", rec), actor="t", reason="")
            raise RuntimeError("between the write and the commit")
    assert await repo.load_all() == [] and repo.log == []

