"""`db rehearse`: the pending migrations tried on a scratch copy of the database, never on the live one.

Clone, record the schema, migrate up, run the verify queries, migrate down in reverse order, compare the
schema with the recorded one, migrate up again, run the previous app version's queries on the new schema
(in a transaction rolled back). Each step is timed; the first failure stops the run; the scratch database
is dropped at the end in every case (failure, exception, Ctrl-C). With nothing pending, the last applied
migration is rolled back first and rehearsed the same way, and the result must equal the source's schema.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg

from deploy import migrations
from deploy.backup import BackupError, _drop, _libpq, _with_db

__all__ = ["Rehearsal", "Step", "rehearse", "schema_sql"]

Source = Literal["dump", "template"]


@dataclass(frozen=True, kw_only=True)
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass(kw_only=True)
class Rehearsal:
    database: str
    mode: Literal["pending", "last"] = "pending"
    applied: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


class _Failed(Exception):
    """A check did not hold; the message is the step's detail."""


async def _step(r: Rehearsal, name: str, action: Callable[[], Awaitable[str | None]]) -> bool:
    start = time.perf_counter()
    try:
        detail, ok = await action() or "done", True
    except _Failed as exc:
        detail, ok = str(exc), False
    except Exception as exc:  # noqa: BLE001 - the step failed: the report says why; the scratch DB is dropped
        detail, ok = f"{type(exc).__name__}: {exc}", False
    r.steps.append(Step(name=name, ok=ok, seconds=round(time.perf_counter() - start, 3), detail=detail))
    return ok


async def _exec(*cmd: str, dsn: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """`cmd` with `{dsn}` replaced by the DSN without its password (which goes in PGPASSWORD)."""
    safe, env = _libpq(dsn)
    return await asyncio.create_subprocess_exec(*(a.replace("{dsn}", safe) for a in cmd),
                                                env={**os.environ, **env}, **kwargs)


# Debian's PostgreSQL 15.20 dumps a per-column `pg_attver` option that changes when a column is re-created:
# bookkeeping, not schema (15.18 does not write it)
_ATTVER = re.compile(r"ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);")


async def schema_sql(*, dsn: str, schema: str | None = None) -> str:
    """`pg_dump --schema-only` (of `schema`, else of the whole database) without its per-run `\\restrict` keys."""
    only = ["-n", schema] if schema else []
    proc = await _exec("pg_dump", "--schema-only", "--no-owner", *only, "-d", "{dsn}", dsn=dsn,
                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"pg_dump --schema-only exited {proc.returncode}: {err.decode(errors='replace').strip()}")
    return "\n".join(line for line in out.decode().splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict")) and not _ATTVER.fullmatch(line))


async def _pipe(*, dsn: str, target: str) -> None:
    """pg_dump -Fc of the source straight into pg_restore on the scratch database (no file, no compression)."""
    read, write = os.pipe()
    try:
        # a dump queued behind a stuck lock fails after a minute instead of hanging the rehearsal
        dump = await _exec("pg_dump", "-Fc", "-Z0", "--lock-wait-timeout=60s", "-d", "{dsn}", dsn=dsn, stdout=write,
                           stderr=asyncio.subprocess.PIPE)
        load = await _exec("pg_restore", "--no-owner", "--exit-on-error", "-d", "{dsn}", dsn=target, stdin=read,
                           stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    finally:
        os.close(read)
        os.close(write)
    try:
        (_, dump_err), (_, load_err) = await asyncio.gather(dump.communicate(), load.communicate())
    finally:
        for proc in (dump, load):
            if proc.returncode is None:
                proc.kill()
    for name, proc, err in (("pg_restore", load, load_err), ("pg_dump", dump, dump_err)):
        if proc.returncode != 0:
            raise BackupError(f"{name} exited {proc.returncode}: {err.decode(errors='replace').strip()[:500]}")


async def _create(dsn: str, sql: str) -> None:
    admin = await asyncpg.connect(dsn, timeout=10)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


async def _clone(*, dsn: str, scratch: str, source: Source) -> str:
    name, refused = urlsplit(dsn).path.lstrip("/") or "postgres", ""
    if source == "template":  # from another database: our own connection would block the copy too
        try:
            await _create(_with_db(dsn, "postgres"), f'CREATE DATABASE "{scratch}" TEMPLATE "{name}"')
            return f"CREATE DATABASE {scratch} TEMPLATE {name}"
        except asyncpg.ObjectInUseError as exc:  # a live database always has other connections
            refused = f"TEMPLATE refused ({exc}), so "
    await _create(dsn, f'CREATE DATABASE "{scratch}"')
    await _pipe(dsn=dsn, target=_with_db(dsn, scratch))
    return f"{refused}pg_dump -Fc {name} | pg_restore into {scratch}"


async def _queries(*, dsn: str, schema: str, statements: list[str], previous: bool) -> str:
    conn = await asyncpg.connect(dsn, timeout=10, server_settings={"search_path": schema})
    try:
        if not previous:
            return "; ".join([f"{q} -> {await conn.fetchval(q)}" for q in statements]) or "no verify queries"
        tx = conn.transaction()
        await tx.start()
        try:
            for q in statements:
                try:
                    await conn.execute(q)
                except asyncpg.PostgresError as exc:
                    raise _Failed(f"not backward compatible: {q}: {type(exc).__name__}: {exc}") from exc
        finally:
            await tx.rollback()
        return f"{len(statements)} statements ran on the new schema (rolled back)"
    finally:
        await conn.close()


def _statements(path: Path) -> list[str]:
    """One statement per line; blank lines and `--` comments skipped."""
    return [s for line in path.read_text().splitlines() if (s := line.strip()) and not s.startswith("--")]


def _same(before: str, after: str, *, what: str, when: str) -> str:
    if before == after:
        return f"schema equals {what}"
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), f"{what} schema", f"schema {when}",
                                lineterm="", n=2)
    raise _Failed(f"schema differs from {what}:\n" + "\n".join(list(diff)[:80]))


async def _plan(r: Rehearsal, *, dsn: str, schema: str, directory: Path, snap: dict[str, str],
                until: str | None) -> str:
    await migrations.migrate(dsn=dsn, schema=schema, directory=directory, until="")  # the schema and its table only
    states = await migrations.status(dsn=dsn, schema=schema, directory=directory)
    pending = [s.version for s in states if not s.applied and (until is None or s.version <= until)]
    if pending:
        return f"pending: {', '.join(pending)} (what the next `db migrate` applies)"
    if not states:
        raise _Failed(f"no migrations in {directory}: nothing to rehearse")
    r.mode = "last"
    snap["source"] = await schema_sql(dsn=dsn, schema=schema)
    last = await migrations.rollback(dsn=dsn, schema=schema, directory=directory)
    return f"nothing pending: rehearsing the last applied, {last} (rolled back first, re-applied at the end)"


async def _stages(r: Rehearsal, *, dsn: str, schema: str, directory: Path, verify: list[str],
                  previous: list[str] | None, until: str | None = None) -> None:
    snap: dict[str, str] = {}

    async def record() -> str:
        snap["before"] = await schema_sql(dsn=dsn, schema=schema)
        return f"{len(snap['before'].splitlines())} lines of `pg_dump --schema-only -n {schema}`"

    async def up() -> str:
        r.applied = await migrations.migrate(dsn=dsn, schema=schema, directory=directory, until=until)
        return f"applied {', '.join(r.applied)}"

    async def down() -> str:
        for version in reversed(r.applied):
            try:
                done = await migrations.rollback(dsn=dsn, schema=schema, directory=directory)
            except Exception as exc:  # noqa: BLE001 - reported with the version whose down file failed
                raise _Failed(f"{version}.down.sql failed: {type(exc).__name__}: {exc}") from exc
            if done != version:
                raise _Failed(f"rolled back {done}, expected {version}")
        return f"rolled back {', '.join(reversed(r.applied))}"

    async def again() -> str:
        if (redo := await migrations.migrate(dsn=dsn, schema=schema, directory=directory, until=until)) != r.applied:
            raise _Failed(f"re-applied {redo}, expected {r.applied}")
        if "source" not in snap:
            return f"applied {', '.join(redo)}"
        return _same(snap["source"], await schema_sql(dsn=dsn, schema=schema), what="the source's", when="re-applied")

    async def compare() -> str:
        return _same(snap["before"], await schema_sql(dsn=dsn, schema=schema), what="the recorded", when="rolled back")

    steps: list[tuple[str, Callable[[], Awaitable[str | None]]]] = [
        ("plan", lambda: _plan(r, dsn=dsn, schema=schema, directory=directory, snap=snap, until=until)),
        ("record schema", record), ("migrate up", up),
        ("verify queries", lambda: _queries(dsn=dsn, schema=schema, statements=verify, previous=False)),
        ("migrate down", down), ("compare schema", compare), ("migrate up again", again)]
    if previous is not None:
        steps.append(("previous version's queries",
                      lambda: _queries(dsn=dsn, schema=schema, statements=previous, previous=True)))
    for name, action in steps:
        if not await _step(r, name, action):
            return


async def rehearse(*, dsn: str, schema: str, directory: Path, verify_sql: list[str] | None = None,
                   previous_sql: Path | None = None, source: Source = "dump", until: str | None = None) -> Rehearsal:
    """Rehearse the pending migrations (none after `until`: what a release goes up to), or the last applied
    one, on a scratch clone of `dsn`'s database."""
    if source not in ("dump", "template"):
        raise ValueError(f"source must be 'dump' or 'template', not {source!r}")
    if not directory.is_dir():
        raise FileNotFoundError(f"no migrations directory {directory}")
    previous = _statements(previous_sql) if previous_sql is not None else None
    r = Rehearsal(database=f"safeguard_rehearse_{uuid.uuid4().hex[:12]}")
    target = _with_db(dsn, r.database)
    try:
        if await _step(r, "clone", lambda: _clone(dsn=dsn, scratch=r.database, source=source)):
            await _stages(r, dsn=target, schema=schema, directory=directory, verify=list(verify_sql or []),
                          previous=previous, until=until)
    finally:
        await _step(r, "drop scratch database", lambda: _drop(dsn, r.database))
    return r
