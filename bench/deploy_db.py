"""Database safety on a ~100 MB database: backup, verify and rehearse times against plain pg_dump / pg_restore.

A private PostgreSQL 15 (tests/faults.py's, fsync off, loopback) started here; the demo's v1 schema plus an
`events` table filled to ~100 MB. Baseline, same run, same database: `pg_dump -Fc -f FILE` and
`pg_restore -d NEW FILE`. Safeguard: `backup` (pg_dump under an exported snapshot + exact row counts),
`verify` (create scratch DB, restore, count rows per table, drop) and `db rehearse` of the demo's 0002
(clone by pg_dump | pg_restore, up, verify queries, down, schema compare, up, v1's queries, drop).
Each figure is the median of ROUNDS runs.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from bench.report import record
from deploy import backup as backups
from deploy import migrations
from deploy.app import load_app
from deploy.backup import _run, _with_db
from deploy.rehearse import rehearse
from tests.faults import PrivatePostgres, ensure_installed

ROUNDS = 5
EVENTS = 630_000  # ~100 MB on disk with its primary key


async def _fill(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("""CREATE TABLE demo.events (id bigserial PRIMARY KEY, item_id integer NOT NULL,
                              at timestamptz NOT NULL, kind text NOT NULL, payload text NOT NULL)""")
        await conn.execute("""INSERT INTO demo.events (item_id, at, kind, payload)
                              SELECT g % 20 + 1, now() - g * interval '1 second', 'kind-' || g % 7,
                                     md5(g::text) || md5((g * 7)::text)
                              FROM generate_series(1, $1) AS g""", EVENTS)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def _size(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


async def _timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await action()
    return time.perf_counter() - start, result


async def _baseline(dsn: str, work: Path, i: int) -> tuple[float, float, int]:
    dump = work / f"plain-{i}.dump"
    dump_s, _ = await _timed(lambda: _run("pg_dump", "-Fc", "-f", str(dump), "-d", "{dsn}", dsn=dsn))
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "plain_{i}"')
        restore_s, _ = await _timed(lambda: _run("pg_restore", "--no-owner", "--exit-on-error", "-d", "{dsn}",
                                                 str(dump), dsn=_with_db(dsn, f"plain_{i}")))
        await admin.execute(f'DROP DATABASE "plain_{i}"')
    finally:
        await admin.close()
    size = dump.stat().st_size
    dump.unlink()
    return dump_s, restore_s, size


async def _ours(dsn: str, work: Path) -> dict[str, float]:
    demo = load_app("demo")
    backup_s, item = await _timed(lambda: backups.backup(dsn=dsn, directory=work / "backups", keep=1, check=False))
    verify_s, item = await _timed(lambda: backups.verify(dsn=dsn, item=item))
    assert item.verified, "the bench's own backup did not verify"
    rehearse_s, r = await _timed(lambda: rehearse(dsn=dsn, schema="demo", directory=demo.migrations,
                                                  verify_sql=demo.verify_sql, previous_sql=demo.previous_sql))
    assert r.ok and r.applied == ["0002_items_badge"], r.as_dict()
    clone = next(s.seconds for s in r.steps if s.name == "clone")
    return {"backup": backup_s, "verify": verify_s, "restore (in verify)": item.timings["restore_s"],
            "rehearse": rehearse_s, "clone (in rehearse)": clone}


async def _small(dsn: str) -> None:
    demo = load_app("demo")
    await migrations.migrate(dsn=dsn, schema="demo", directory=demo.migrations, until="0001_items")
    runs = []
    for _ in range(ROUNDS):
        r = await rehearse(dsn=dsn, schema="demo", directory=demo.migrations, verify_sql=demo.verify_sql,
                           previous_sql=demo.previous_sql)
        assert r.ok, r.as_dict()
        runs.append(r)
    total = statistics.median(sum(s.seconds for s in r.steps) for r in runs)
    clone = statistics.median(r.steps[0].seconds for r in runs)
    print(f"demo-sized ({await _size(dsn) / 1e6:.1f} MB): rehearse {total:.2f} s, of which clone {clone:.2f} s")


async def _measure(dsn: str, work: Path) -> None:
    await _small(dsn)
    await _fill(dsn)
    print(f"database: {await _size(dsn) / 1e6:.0f} MB on disk ({EVENTS:,} event rows + the demo's 20 items)")
    plain: list[tuple[float, float, int]] = []
    ours: list[dict[str, float]] = []
    for i in range(ROUNDS):
        plain.append(await _baseline(dsn, work, i))
        ours.append(await _ours(dsn, work))
    dump_s = statistics.median(p[0] for p in plain)
    restore_s = statistics.median(p[1] for p in plain)
    print(f"baseline: pg_dump -Fc {dump_s:.2f} s ({plain[0][2] / 1e6:.0f} MB file), "
          f"pg_restore {restore_s:.2f} s, both {dump_s + restore_s:.2f} s   (median of {ROUNDS})")
    against = {"backup": dump_s, "verify": restore_s, "restore (in verify)": restore_s,
               "rehearse": dump_s + restore_s, "clone (in rehearse)": dump_s + restore_s}
    names = {"backup": "pg_dump", "verify": "pg_restore", "restore (in verify)": "pg_restore",
             "rehearse": "pg_dump + pg_restore", "clone (in rehearse)": "pg_dump + pg_restore"}
    for key, base in against.items():
        value = statistics.median(o[key] for o in ours)
        print(f"safeguard {key:<20} {value:6.2f} s   {value / base:5.2f}x {names[key]}")
        record(f"safeguard {key}, median of {ROUNDS}", value, "s", baseline=names[key], baseline_value=base,
               lower_is_better=True, spread=(min(o[key] for o in ours), max(o[key] for o in ours)))
    print("peer figure (issue 11): pg_dump of 157 MB 0.43 s, restore 1.2 s")


async def main() -> None:
    ensure_installed()
    work = Path(tempfile.mkdtemp(prefix="safeguard-bench-db-"))
    work.chmod(0o755)
    pg = PrivatePostgres(work)
    try:
        pg.prepare()
        pg.start()
        await _measure(pg.dsn, work)
    finally:
        pg.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
