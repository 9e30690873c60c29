"""A full load that read the store before a kill was applied must not undo the kill when it lands after it
(found in CI with two instances: the peer follower's load after subscribing raced a test's kill, and the
stale load also refilled the Redis copy, so the 1 s refresh saw equal revisions and never healed: a killed
flag served on). Real Postgres and Redis; the store read is only held back until the kill is applied."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.flags.service import FlagService
from tests.integration.flags.conftest import ADMIN, Flags, flags  # noqa: F401 - the fixture


@pytest.mark.parametrize("then", ["kill", "kill-new"])
async def test_a_load_racing_a_kill_does_not_undo_it(flags: Flags, unique: str, then: str) -> None:  # noqa: F811
    svc: FlagService = flags.app.state.flags
    key = f"race-{unique}"
    r = await flags.client.post("/api/flags", json={"key": key, "state": "ENABLED", "new": True}, headers=ADMIN)
    assert r.status_code == 201, r.text

    read, go = asyncio.Event(), asyncio.Event()
    original = svc.repo.load_all

    async def held_back_load_all() -> Any:
        records = await original()  # the store as it was before the kill
        read.set()
        await go.wait()
        return records

    svc.repo.load_all = held_back_load_all  # type: ignore[method-assign]
    load = asyncio.create_task(svc.load())
    await asyncio.wait_for(read.wait(), 5)
    svc.repo.load_all = original  # type: ignore[method-assign]
    path = f"/api/flags/{key}/kill" if then == "kill" else "/api/flags/_kill-new"
    assert (await flags.client.post(path, json={"reason": "test"}, headers=ADMIN)).status_code == 200
    go.set()
    await load

    assert svc.get(key).killed  # type: ignore[union-attr]
    await svc.refresh()
    await svc.refresh()
    assert svc.get(key).killed  # type: ignore[union-attr]
    answer = await flags.client.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": {"targetingKey": "u"}})
    assert answer.json()["value"] is False, answer.json()
