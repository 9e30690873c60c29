"""A change of one flag is one statement on Postgres when memory holds the flag as stored (issue 12: the kill's path).

`Changes._save_as_held` decides on the flag in memory and saves it with its audit entry in one statement, only if
the row is still at that version (`PgRepository.save_if_current`). Else the unit of work decides on the stored row,
as before. Each test watches the statements the app's own pool sends (asyncpg's query logger)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx

from services.flags.app import create_app
from services.flags.repository import PgRepository, _init_conn
from shared.settings import KafkaSettings
from tests.integration.flags.conftest import ADMIN, drop, flags_settings

WRITES = ("FOR UPDATE", "INTO flags", "UPDATE flags", "INTO audit_log")


@asynccontextmanager
async def _flags(unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, list[str], asyncpg.Pool]]:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url)
    sent: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        await _init_conn(conn)
        conn.add_query_logger(lambda q: sent.append(q.query))

    pool = await asyncpg.create_pool(postgres_dsn, min_size=0, max_size=4, init=init,
                                     server_settings={"search_path": settings.db_schema})
    app = create_app(settings, repository=PgRepository(pool))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
            async with httpx.AsyncClient(transport=transport, base_url="http://flags", headers=ADMIN) as client:
                (await client.post("/api/flags", json={"key": "pay", "reason": "t"})).raise_for_status()
                yield client, sent, pool
    finally:
        await pool.close()
        await drop(settings, redis_url)


def _writes(sent: list[str]) -> list[str]:
    return [q for q in sent if any(w in q for w in WRITES)]


async def test_a_kill_is_one_statement_with_its_audit_entry(unique: str, kafka_settings: KafkaSettings,
                                                            postgres_dsn: str, redis_url: str) -> None:
    async with _flags(unique, kafka_settings, postgres_dsn, redis_url) as (client, sent, _):
        (await client.post("/api/flags/pay/enable", json={"reason": "on"})).raise_for_status()
        sent.clear()
        r = await client.post("/api/flags/pay/kill", json={"reason": "incident 7"})
        assert r.status_code == 200 and r.json()["state"] == "DISABLED", r.text
        [statement] = _writes(sent)
        assert "UPDATE flags" in statement and "INSERT INTO audit_log" in statement
        [entry, *_] = (await client.get("/api/flags/pay/audit")).json()
        assert (entry["action"], entry["actor"], entry["reason"]) == ("killed", "admin", "incident 7")
        assert entry["before"]["definition"]["state"] == "ENABLED" and entry["before"]["version"] == 2
        assert entry["after"]["definition"]["state"] == "DISABLED" and entry["after"]["version"] == 3
        assert entry["after"]["killed"] is True


async def test_a_row_changed_behind_memory_takes_the_unit_of_work(unique: str, kafka_settings: KafkaSettings,
                                                                 postgres_dsn: str, redis_url: str) -> None:
    """Another writer moved the row on (here: SQL, as a second instance would): the one statement updates nothing
    and writes no audit entry; the unit of work decides on the stored row, so the audit shows what was stored."""
    async with _flags(unique, kafka_settings, postgres_dsn, redis_url) as (client, sent, pool):
        await pool.execute("UPDATE flags SET description = 'changed elsewhere', version = version + 1"
                           " WHERE key = 'pay'")
        sent.clear()
        r = await client.post("/api/flags/pay/kill", json={"reason": "incident 8"})
        assert r.status_code == 200 and r.json()["state"] == "DISABLED", r.text
        assert len(_writes(sent)) == 4, _writes(sent)  # the one statement, then SELECT .. FOR UPDATE, upsert, audit
        entries = (await client.get("/api/flags/pay/audit")).json()
        assert [e["action"] for e in entries] == ["killed", "created"]
        assert entries[0]["before"]["description"] == "changed elsewhere" and entries[0]["after"]["version"] == 3
