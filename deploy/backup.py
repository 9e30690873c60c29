"""Backups of the protected app's database: `pg_dump -Fc` into a directory with retention, verified by
restoring into a scratch database and comparing row counts per table with the dump's own snapshot."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

__all__ = ["Backup", "BackupError", "backup", "list_backups", "restore", "verify"]

_TABLES = """SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS t FROM pg_tables
              WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"""


class BackupError(RuntimeError):
    """A dump, restore or verification failed; the message says which and why."""


@dataclass(kw_only=True)
class Backup:
    path: Path
    created: str
    size_bytes: int
    rows: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    verified: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def _with_db(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _libpq(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password (which goes in PGPASSWORD: never on a command line)."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), {"PGPASSWORD": unquote(parts.password)}


async def _run(*cmd: str, dsn: str) -> None:
    safe, env = _libpq(dsn)
    args = [a.replace("{dsn}", safe) for a in cmd]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE, env={**os.environ, **env})
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"{cmd[0]} exited {proc.returncode}: {err.decode(errors='replace').strip()[:500]}")


async def _counts(conn: Any) -> dict[str, int]:
    return {r["t"]: await conn.fetchval(f"SELECT count(*) FROM {r['t']}") for r in await conn.fetch(_TABLES)}


async def _dump(*, dsn: str, path: Path) -> dict[str, int]:
    """pg_dump under an exported snapshot, counting rows in that same snapshot (exact on a live database)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            # count AFTER the dump, in the same snapshot: counting first would hold table locks while
            # pg_dump waits for its own, and a migration queued between the two deadlocks all three
            await _run("pg_dump", "-Fc", f"--snapshot={snapshot}", "--lock-wait-timeout=30s", "-f", str(path),
                       "-d", "{dsn}", dsn=dsn)
            rows = await _counts(conn)
        return rows
    finally:
        await conn.close()


def _manifest(path: Path) -> Path:
    return path.with_suffix(".json")


def _save(item: Backup) -> None:
    _manifest(item.path).write_text(json.dumps(item.as_dict(), indent=2))


def list_backups(*, directory: Path) -> list[Backup]:
    """Every backup in `directory` with its manifest, newest first."""
    items = []
    for m in sorted(directory.glob("*.json"), reverse=True):
        data = json.loads(m.read_text())
        if Path(data["path"]).is_file():
            items.append(Backup(**{**data, "path": Path(data["path"])}))
    return items


def _prune(*, directory: Path, keep: int) -> list[Path]:
    removed = []
    for old in list_backups(directory=directory)[keep:]:
        old.path.unlink(missing_ok=True)
        _manifest(old.path).unlink(missing_ok=True)
        removed.append(old.path)
    return removed


async def restore(*, dsn: str, item: Backup, database: str) -> dict[str, float]:
    """Restore `item` into a new `database` on the same server and check its row counts equal the dump's."""
    admin = await asyncpg.connect(dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    try:
        return await _restore_into(dsn=dsn, item=item, database=database)
    except BaseException:
        await _drop(dsn, database)  # no half-restored database left behind
        raise


async def _restore_into(*, dsn: str, item: Backup, database: str) -> dict[str, float]:
    start = time.perf_counter()
    target = _with_db(dsn, database)
    await _run("pg_restore", "--no-owner", "--exit-on-error", "-d", "{dsn}", str(item.path), dsn=target)
    restored = time.perf_counter() - start
    conn = await asyncpg.connect(target, timeout=10)
    try:
        rows = await _counts(conn)
    finally:
        await conn.close()
    if rows != item.rows:
        diff = {t: (item.rows.get(t), rows.get(t)) for t in item.rows.keys() | rows.keys()
                if item.rows.get(t) != rows.get(t)}
        raise BackupError(f"restored row counts differ from the dump's (table: dump, restored): {diff}")
    return {"restore_s": round(restored, 3), "compare_s": round(time.perf_counter() - start - restored, 3)}


async def _drop(dsn: str, database: str) -> None:
    """Plain DROP first: Postgres itself asks an autovacuum worker in it (a superuser session, which WITH
    (FORCE) may not terminate for a non-superuser, as after a big restore) to leave; FORCE then for
    sessions of our own role still in it."""
    admin = await asyncpg.connect(dsn, timeout=10)
    try:
        for attempt in range(5):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
                return
            except asyncpg.ObjectInUseError:
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                    return
                except asyncpg.InsufficientPrivilegeError:
                    await asyncio.sleep(0.5 * (attempt + 1))  # a superuser session (autovacuum) is leaving
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
    finally:
        await admin.close()


async def verify(*, dsn: str, item: Backup) -> Backup:
    """Restore into a scratch database, compare row counts, drop it; records the result in the manifest."""
    scratch = f"safeguard_verify_{uuid.uuid4().hex[:12]}"
    try:
        item.timings.update(await restore(dsn=dsn, item=item, database=scratch))
        item.verified = True
    except BackupError:
        item.verified = False
        raise
    finally:
        _save(item)
        await _drop(dsn, scratch)
    return item


async def backup(*, dsn: str, directory: Path, keep: int, check: bool = True) -> Backup:
    """Dump, keep the newest `keep` backups, and (by default) verify the new one by restoring it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    name = urlsplit(dsn).path.lstrip("/") or "postgres"
    path = directory / f"{name}-{now:%Y%m%dT%H%M%S%fZ}.dump"
    start = time.perf_counter()
    rows = await _dump(dsn=dsn, path=path)
    item = Backup(path=path, created=now.isoformat(), size_bytes=path.stat().st_size, rows=rows,
                  timings={"dump_s": round(time.perf_counter() - start, 3)})
    _save(item)
    _prune(directory=directory, keep=keep)
    return await verify(dsn=dsn, item=item) if check else item
