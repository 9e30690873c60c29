"""The demo's routes: a tiny shop, the `gamification` feature, and fault injection."""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from redis.exceptions import RedisError

from examples.demo.faults import FaultUpdate
from sdk.circuit import CallNotPermittedError

__all__ = ["admin_router", "router", "v2_router"]

log = logging.getLogger(__name__)
router = APIRouter()
v2_router = APIRouter()  # what release v2 adds (examples/demo/safeguard.toml)
admin_router = APIRouter()
STREAKS_BUG_SHARE = 40  # % of users for whom v2's streaks feature fails (the bug a canary must catch)


def _s(request: Request) -> Any:
    return request.state


async def faulty(request: Request) -> None:
    """Applied to every business route: injected latency and errors."""
    faults = _s(request).faults
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.should_fail():
        raise HTTPException(500, "injected failure")


async def _query(request: Request, method: str, sql: str, *args: Any) -> Any:
    st = _s(request)
    if st.faults.slow_query_ms:
        sql = f"SELECT pg_sleep({st.faults.slow_query_ms / 1000:.3f}) AS _slow, q.* FROM ({sql}) AS q"
    try:
        return await getattr(st.db, method)(sql, *args)
    except CallNotPermittedError as exc:
        raise HTTPException(503, "database breaker open", headers={"Retry-After": "5"}) from exc
    except (OSError, ConnectionError) as exc:
        raise HTTPException(503, "database unavailable") from exc


@router.get("/", dependencies=[Depends(faulty)])
async def home(request: Request, user: str = "guest") -> dict[str, Any]:
    st = _s(request)
    return {"app": "demo", "color": st.settings.color, "version": st.settings.release, "user": user,
            "gamification": await st.flags.enabled("gamification", targeting_key=user)}


@router.get("/api/items", dependencies=[Depends(faulty)])
async def items(request: Request) -> list[dict[str, Any]]:
    rows = await _query(request, "fetch", "SELECT id, name, points FROM demo.items ORDER BY id LIMIT 50")
    return [{"id": r["id"], "name": r["name"], "points": r["points"]} for r in rows]


@v2_router.get("/api/v2/items", dependencies=[Depends(faulty)])
async def items_v2(request: Request) -> list[dict[str, Any]]:
    """v2 reads the nullable `badge` column of migration 0002 (v1 never does)."""
    rows = await _query(request, "fetch", "SELECT id, name, points, badge FROM demo.items ORDER BY id LIMIT 50")
    return [{"id": r["id"], "name": r["name"], "points": r["points"], "badge": r["badge"]} for r in rows]


@v2_router.get("/api/streaks", dependencies=[Depends(faulty)])
async def streaks(request: Request, user: str = "guest") -> dict[str, Any]:
    """v2's new feature behind the `streaks` flag (404 while off). It has a bug: for a share of users
    (those whose last visit it never stored) it raises, and the app answers 500."""
    st = _s(request)
    if not await st.flags.enabled("streaks", targeting_key=user):
        raise HTTPException(404, "streaks is not enabled")
    visits: dict[str, int] = {}
    if zlib.crc32(user.encode()) % 100 < 100 - STREAKS_BUG_SHARE:
        visits["last_visit"] = zlib.crc32(user.encode()) % 7
    return {"user": user, "streak_days": visits["last_visit"] + 1}  # KeyError for the unlucky share


@router.get("/api/gamification/leaderboard", dependencies=[Depends(faulty)])
async def leaderboard(request: Request, user: str = "guest") -> dict[str, Any]:
    """The new feature: 404 while the flag is off for this user."""
    st = _s(request)
    if not await st.flags.enabled("gamification", targeting_key=user):
        raise HTTPException(404, "gamification is not enabled")
    cached = None
    try:
        cached = await st.cache.get("demo:leaderboard")
    except (CallNotPermittedError, OSError, ConnectionError, RedisError) as exc:
        log.info("cache skipped: %s", type(exc).__name__)  # Redis away or its breaker open: go to the DB
    if cached is not None:
        return {"source": "cache", "leaders": json.loads(cached)}
    rows = await _query(request, "fetch", "SELECT name, points FROM demo.items ORDER BY points DESC LIMIT 5")
    leaders = [{"name": r["name"], "points": r["points"]} for r in rows]
    try:
        await st.cache.set("demo:leaderboard", json.dumps(leaders), ex=5)
    except (CallNotPermittedError, OSError, ConnectionError, RedisError):
        pass  # a cold cache is fine
    return {"source": "db", "leaders": leaders}


@router.get("/api/breakers")
async def breakers(request: Request) -> dict[str, Any]:
    reg = _s(request).registry
    return {name: {"state": cb.state.value, "failure_rate": cb.snapshot().failure_rate,
                   "slow_call_rate": cb.snapshot().slow_call_rate, "not_permitted": cb.counters.not_permitted}
            for name, cb in reg.breakers.items()}


@admin_router.get("/api/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    st = _s(request)
    return {**st.faults.describe(), "slow_db_ms": st.db.delay_s * 1000, "db_dropped": st.db.held_down,
            "db_connected": st.db.connected}


@admin_router.put("/api/faults")
async def set_faults(request: Request, update: FaultUpdate) -> dict[str, Any]:
    """Change the injected faults (admin token, or loopback in the local stack); audited in the log."""
    st = _s(request)
    actor = await st.auth.require_admin_or_loopback(request)
    f = st.faults
    if update.error_rate is not None:
        f.error_rate = update.error_rate
    if update.latency_ms is not None:
        f.latency_ms = update.latency_ms
    if update.slow_query_ms is not None:
        f.slow_query_ms = update.slow_query_ms
    if update.slow_db_ms is not None:
        st.db.delay_s = update.slow_db_ms / 1000
    if update.grow_memory_mb:
        await asyncio.to_thread(f.grow, update.grow_memory_mb)
    if update.drop_db is True:
        await st.db.drop()
    elif update.drop_db is False and (st.db.held_down or not st.db.connected):
        await st.db.restart()  # may wait for a RestartConnectionPool from recovery already under way
    log.warning("faults changed", extra={"actor": actor, "audit": True,
                                         "change": update.model_dump(exclude_none=True)})
    return await get_faults(request)


@admin_router.delete("/api/faults")
async def reset_faults(request: Request) -> dict[str, Any]:
    st = _s(request)
    actor = await st.auth.require_admin_or_loopback(request)
    st.faults.reset()
    st.db.delay_s = 0.0
    if st.db.held_down:
        await st.db.restart()
    log.warning("faults reset", extra={"actor": actor, "audit": True})
    return await get_faults(request)
