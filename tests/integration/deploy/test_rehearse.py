"""`db rehearse` on a private PostgreSQL 15: what it catches, what it passes, and that its scratch database
never outlives it (success, failure, cancellation, Ctrl-C)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from deploy import migrations
from deploy.app import load_app
from deploy.rehearse import rehearse, schema_sql
from deploy.settings import ROOT

pytestmark = pytest.mark.integration
DEMO = load_app("demo")
PREVIOUS = "SELECT id, name, points FROM demo.items ORDER BY id LIMIT 50;\n"
STEPS = ["clone", "plan", "record schema", "migrate up", "verify queries", "migrate down", "compare schema",
         "migrate up again", "previous version's queries", "drop scratch database"]


async def _scratch(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["datname"] for r in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'safeguard_rehearse_%'")]
    finally:
        await conn.close()


async def _live_v1(dsn: str, tmp_path: Path, up: str | None = None, down: str | None = None) -> Path:
    """The demo's 0001 applied on the source (v1 is live); `0002_next` pending with `up` / `down` if given."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for f in DEMO.migrations.glob("0001_*.sql"):
        shutil.copy(f, directory / f.name)
    assert await migrations.migrate(dsn=dsn, schema="demo", directory=directory) == ["0001_items"]
    if up is not None:
        (directory / "0002_next.up.sql").write_text(up)
    if down is not None:
        (directory / "0002_next.down.sql").write_text(down)
    (tmp_path / "v1.sql").write_text(f"-- v1's queries\n\n{PREVIOUS}")
    return directory


async def _run(dsn: str, directory: Path, tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return await rehearse(dsn=dsn, schema="demo", directory=directory, verify_sql=DEMO.verify_sql,
                          previous_sql=tmp_path / "v1.sql", **kwargs)  # type: ignore[arg-type]


async def test_passes_a_nullable_add_and_leaves_the_source_untouched(private_postgres, tmp_path: Path) -> None:
    dsn = private_postgres.dsn
    directory = await _live_v1(dsn, tmp_path, "ALTER TABLE demo.items ADD COLUMN note text;",
                               "ALTER TABLE demo.items DROP COLUMN note;")
    before = await schema_sql(dsn=dsn)

    r = await _run(dsn, directory, tmp_path)

    assert r.ok, r.as_dict()
    assert (r.mode, r.applied) == ("pending", ["0002_next"])
    assert [s.name for s in r.steps] == STEPS
    assert r.steps[4].detail == "SELECT count(*) FROM demo.items -> 20"
    assert await schema_sql(dsn=dsn) == before  # the rehearsal never migrates the source
    assert await _scratch(dsn) == []


@pytest.mark.parametrize(("up", "down", "step", "says"), [
    ("ALTER TABLE demo.items ADD COLUMN note text; CREATE INDEX items_points_idx ON demo.items (points);",
     "ALTER TABLE demo.items DROP COLUMN note;", "compare schema", "+CREATE INDEX items_points_idx"),
    ("ALTER TABLE demo.items ADD COLUMN note text;", "SELECT 1;", "compare schema", "+    note text"),
    ("ALTER TABLE demo.items ADD COLUMN note text;", "ALTER TABLE demo.items DROP COLUMN nope;", "migrate down",
     "0002_next.down.sql failed: UndefinedColumnError"),
    ("ALTER TABLE demo.items ADD COLUMN note text;", None, "migrate down", "0002_next has no rollback file"),
    ("ALTER TABLE demo.nope ADD COLUMN x int;", "SELECT 1;", "migrate up", "UndefinedTableError"),
], ids=["forgotten-index", "forgotten-column", "failing-down", "no-down", "failing-up"])
async def test_catches_a_rollback_that_does_not_restore_the_schema(
    private_postgres, tmp_path: Path, up: str, down: str | None, step: str, says: str,
) -> None:
    dsn = private_postgres.dsn
    r = await _run(dsn, await _live_v1(dsn, tmp_path, up, down), tmp_path)

    assert not r.ok
    failed = [s for s in r.steps if not s.ok]
    assert [s.name for s in failed] == [step]
    assert says in failed[0].detail
    assert r.steps[-1].name == "drop scratch database" and r.steps[-1].ok  # nothing ran after the failure
    assert [s.name for s in r.steps[:-1]] == STEPS[:STEPS.index(step) + 1]
    assert await _scratch(dsn) == []


async def test_catches_a_migration_that_breaks_the_previous_versions_queries(private_postgres, tmp_path: Path) -> None:
    dsn = private_postgres.dsn
    directory = await _live_v1(dsn, tmp_path, "ALTER TABLE demo.items RENAME COLUMN points TO score;",
                               "ALTER TABLE demo.items RENAME COLUMN score TO points;")
    r = await _run(dsn, directory, tmp_path)

    assert not r.ok
    assert [s.name for s in r.steps if not s.ok] == ["previous version's queries"]
    assert r.steps[-2].detail.startswith(f"not backward compatible: {PREVIOUS.strip()}: UndefinedColumnError")
    assert {s.name: s.ok for s in r.steps}["compare schema"]  # the rename's down file itself was fine
    assert await _scratch(dsn) == []


async def test_nothing_pending_rehearses_the_last_applied(private_postgres, tmp_path: Path) -> None:
    dsn = private_postgres.dsn
    assert await migrations.migrate(dsn=dsn, schema="demo", directory=DEMO.migrations) == [
        "0001_items", "0002_items_badge"]
    before = await schema_sql(dsn=dsn)
    r = await rehearse(dsn=dsn, schema="demo", directory=DEMO.migrations, verify_sql=DEMO.verify_sql,
                       previous_sql=DEMO.previous_sql)

    assert r.ok, r.as_dict()
    assert (r.mode, r.applied) == ("last", ["0002_items_badge"])
    steps = {s.name: s.detail for s in r.steps}
    assert "rehearsing the last applied, 0002_items_badge" in steps["plan"]
    assert steps["migrate up again"] == "schema equals the source's"
    assert await schema_sql(dsn=dsn) == before
    assert await _scratch(dsn) == []


@pytest.mark.parametrize("source", ["dump", "template"])
async def test_works_while_another_connection_is_open_on_the_source(
    private_postgres, tmp_path: Path, source: str,
) -> None:
    dsn = private_postgres.dsn
    directory = await _live_v1(dsn, tmp_path, "ALTER TABLE demo.items ADD COLUMN note text;",
                               "ALTER TABLE demo.items DROP COLUMN note;")
    app = await asyncpg.connect(dsn)  # the live app's connection
    try:
        r = await _run(dsn, directory, tmp_path, source=source)
        assert await app.fetchval("SELECT count(*) FROM demo.items") == 20
    finally:
        await app.close()

    assert r.ok, r.as_dict()
    clone = r.steps[0].detail
    assert "pg_dump -Fc postgres | pg_restore" in clone
    assert ("TEMPLATE refused" in clone and "being accessed by other users" in clone) == (source == "template")
    assert await _scratch(dsn) == []


async def test_the_scratch_database_is_dropped_when_cancelled(private_postgres, tmp_path: Path) -> None:
    dsn = private_postgres.dsn
    directory = await _live_v1(dsn, tmp_path, "SELECT pg_sleep(60);", "SELECT 1;")
    task = asyncio.create_task(_run(dsn, directory, tmp_path))
    deadline = time.monotonic() + 30
    while not await _scratch(dsn):
        assert time.monotonic() < deadline, "no scratch database appeared"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # well into the 60 s migration
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _scratch(dsn) == []


def _app_file(tmp_path: Path, directory: Path) -> Path:
    path = tmp_path / "safeguard.toml"
    path.write_text(f'name = "t"\nschema = "demo"\nmigrations = "{directory.name}"\nurl = "http://127.0.0.1:1"\n'
                    f'[rehearse]\nverify = ["SELECT count(*) FROM demo.items"]\nprevious = "v1.sql"\n')
    return path


def _cli(dsn: str, *args: str, sigint: Any = signal.SIG_DFL) -> subprocess.Popen[str]:
    """The CLI with SIGINT as a terminal leaves it (default), or ignored (`SIG_IGN`: a background job, a CI runner)."""
    return subprocess.Popen([str(ROOT / ".venv/bin/python"), "-m", "deploy.cli", "db", "rehearse", *args],
                            cwd=ROOT, env={**os.environ, "DEPLOY_DATABASE_URL": dsn}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))


@pytest.mark.parametrize(("up", "down", "code"), [
    ("ALTER TABLE demo.items ADD COLUMN note text;", "ALTER TABLE demo.items DROP COLUMN note;", 0),
    ("ALTER TABLE demo.items RENAME COLUMN points TO score;", "ALTER TABLE demo.items RENAME COLUMN score TO points;", 1),
], ids=["nullable-add", "rename"])
async def test_cli_json_and_exit_codes(private_postgres, tmp_path: Path, up: str, down: str, code: int) -> None:
    dsn = private_postgres.dsn
    app = _app_file(tmp_path, await _live_v1(dsn, tmp_path, up, down))
    proc = _cli(dsn, "--app", str(app), "--json")
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == code, out + err
    report = json.loads(out)
    assert report["ok"] is (code == 0)
    assert report["applied"] == ["0002_next"]
    assert [s["name"] for s in report["steps"]] == STEPS
    assert [s["name"] for s in report["steps"] if not s["ok"]] == ([] if code == 0 else ["previous version's queries"])
    assert await _scratch(dsn) == []


async def test_cli_bad_input_exits_1(private_postgres, tmp_path: Path) -> None:
    proc = _cli(private_postgres.dsn, "--app", str(tmp_path / "missing.toml"), "--json")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "no app description" in json.loads(out)["error"]


@pytest.mark.parametrize(("sig", "inherited"), [(signal.SIGINT, signal.SIG_DFL), (signal.SIGINT, signal.SIG_IGN),
                                                (signal.SIGTERM, signal.SIG_DFL)],
                         ids=["ctrl-c", "sigint-to-a-background-job", "sigterm"])
async def test_cli_interrupted_drops_the_scratch_database(private_postgres, tmp_path: Path, sig: int,
                                                          inherited: Any) -> None:
    dsn = private_postgres.dsn
    app = _app_file(tmp_path, await _live_v1(dsn, tmp_path, "SELECT pg_sleep(60);", "SELECT 1;"))
    proc = _cli(dsn, "--app", str(app), sigint=inherited)
    deadline = time.monotonic() + 60
    while not await _scratch(dsn):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 128 + sig, err
    assert "interrupted" in err
    assert await _scratch(dsn) == []


@pytest.mark.parametrize("migrations_dir", [
    "services/flags/migrations", "services/recovery/migrations", "services/notifier/migrations",
    "examples/demo/migrations",
])
async def test_our_own_migrations_pass_the_rehearsal(private_postgres, migrations_dir: str) -> None:
    directory = ROOT / migrations_dir
    schema = directory.parent.name
    r = await rehearse(dsn=private_postgres.dsn, schema=schema, directory=directory,
                       verify_sql=DEMO.verify_sql if schema == "demo" else None,
                       previous_sql=DEMO.previous_sql if schema == "demo" else None)

    assert r.ok, "\n".join(f"{s.name}: {s.detail}" for s in r.steps if not s.ok)
    assert r.applied == sorted(p.name.removesuffix(".up.sql") for p in directory.glob("*.up.sql"))


async def test_until_rehearses_only_what_the_release_goes_up_to(private_postgres, tmp_path: Path) -> None:
    """`deploy --version v2` migrates up to v2's migration: a later one (v3's, its down file broken) is
    neither applied nor rehearsed for it, but it still fails a rehearsal of everything pending."""
    dsn = private_postgres.dsn
    directory = await _live_v1(dsn, tmp_path, "ALTER TABLE demo.items ADD COLUMN note text;",
                               "ALTER TABLE demo.items DROP COLUMN note;")
    (directory / "0003_later.up.sql").write_text("CREATE INDEX items_points ON demo.items (points);")
    (directory / "0003_later.down.sql").write_text("SELECT 1;  -- forgets the index")

    r = await _run(dsn, directory, tmp_path, until="0002_next")
    assert r.ok, r.as_dict()
    assert r.applied == ["0002_next"]

    everything = await _run(dsn, directory, tmp_path)
    assert not everything.ok and everything.applied == ["0002_next", "0003_later"]
    assert await _scratch(dsn) == []
