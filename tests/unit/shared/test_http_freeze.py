"""`shared.http.frozen_after_startup`: once the app's lifespan has started, what is alive is moved to the
collector's permanent generation, so a full collection no longer walks the modules, the app and its caches."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.http import frozen_after_startup


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_lives_after_startup_is_frozen_and_requests_go_through() -> None:
    kept: list[Any] = []
    frozen_at_start: list[int] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kept.append([{"n": i} for i in range(10_000)])  # a cache the startup built
        frozen_at_start.append(gc.get_freeze_count())
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/x")
    async def x() -> dict[str, int]:
        return {"frozen": gc.get_freeze_count()}

    with TestClient(frozen_after_startup(app)) as client:
        assert frozen_at_start == [0]  # not while the startup runs
        frozen = client.get("/x").json()["frozen"]
    assert frozen >= 10_000, frozen  # the cache, and all else alive once it started
