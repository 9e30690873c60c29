from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pytest

from deploy import migrations
from deploy.rehearse import schema_sql
from deploy.settings import ROOT

pytestmark = pytest.mark.integration
DEMO = ROOT / "examples" / "demo" / "migrations"


def _dir(tmp_path: Path, *extra: tuple[str, str, str | None]) -> Path:
    for f in DEMO.glob("0001_*.sql"):  # v1 only: tests add their own next migration
        shutil.copy(f, tmp_path / f.name)
    for version, up, down in extra:
        (tmp_path / f"{version}.up.sql").write_text(up)
        if down is not None:
            (tmp_path / f"{version}.down.sql").write_text(down)
    return tmp_path


async def test_migrate_up_then_rollback_restores_the_schema(private_postgres, tmp_path: Path) -> None:
    dsn = private_postgres.dsn
    directory = _dir(tmp_path, ("0002_note", "ALTER TABLE demo.items ADD COLUMN note text;",
                                "ALTER TABLE demo.items DROP COLUMN note;"))
    (tmp_path / "0002_note.up.sql").rename(tmp_path / "later")
    assert await migrations.migrate(dsn=dsn, schema="demo", directory=directory) == ["0001_items"]
    before = await schema_sql(dsn=dsn)
    (tmp_path / "later").rename(tmp_path / "0002_note.up.sql")

    assert await migrations.migrate(dsn=dsn, schema="demo", directory=directory) == ["0002_note"]
    assert "note text" in await schema_sql(dsn=dsn)
    assert await migrations.rollback(dsn=dsn, schema="demo", directory=directory) == "0002_note"
    assert await schema_sql(dsn=dsn) == before
    states = await migrations.status(dsn=dsn, schema="demo", directory=directory)
    assert [(s.version, s.applied) for s in states] == [("0001_items", True), ("0002_note", False)]


async def test_a_failing_rollback_changes_nothing(private_postgres, tmp_path: Path) -> None:
    dsn = private_postgres.dsn
    directory = _dir(tmp_path, ("0002_note", "ALTER TABLE demo.items ADD COLUMN note text;",
                                "ALTER TABLE demo.items DROP COLUMN note; ALTER TABLE demo.nope DROP COLUMN x;"))
    await migrations.migrate(dsn=dsn, schema="demo", directory=directory)
    before = await schema_sql(dsn=dsn)
    with pytest.raises(asyncpg.UndefinedTableError):
        await migrations.rollback(dsn=dsn, schema="demo", directory=directory)
    assert await schema_sql(dsn=dsn) == before
    assert [s.applied for s in await migrations.status(dsn=dsn, schema="demo", directory=directory)] == [True, True]


async def test_rollback_without_a_down_file_refuses(private_postgres, tmp_path: Path) -> None:
    dsn = private_postgres.dsn
    directory = _dir(tmp_path, ("0002_note", "ALTER TABLE demo.items ADD COLUMN note text;", None))
    await migrations.migrate(dsn=dsn, schema="demo", directory=directory)
    with pytest.raises(migrations.MigrationError, match="0002_note has no rollback file"):
        await migrations.rollback(dsn=dsn, schema="demo", directory=directory)


def _npm(dsn: str, directory: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPLOY_DATABASE_URL": dsn, "DEPLOY_MIGRATIONS": str(directory)}
    return subprocess.run("npm run db:rollback", shell=True, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


async def test_step_4_npm_run_db_rollback_verbatim(private_postgres, tmp_path: Path) -> None:
    dsn = private_postgres.dsn
    directory = _dir(tmp_path, ("0002_note", "ALTER TABLE demo.items ADD COLUMN note text;",
                                "ALTER TABLE demo.items DROP COLUMN note;"))
    await migrations.migrate(dsn=dsn, schema="demo", directory=directory)

    run = _npm(dsn, directory)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "rolled back: 0002_note" in run.stdout
    assert "note" not in await schema_sql(dsn=dsn)
    assert [s.applied for s in await migrations.status(dsn=dsn, schema="demo", directory=directory)] == [True, False]


async def test_step_4_fails_loudly_when_the_database_is_down(private_postgres, tmp_path: Path) -> None:
    directory = _dir(tmp_path)
    with private_postgres.stopped():
        run = _npm(private_postgres.dsn, directory)
    assert run.returncode != 0
    assert "failed" in run.stderr


def test_cli_json_status_and_migrate(private_postgres, tmp_path: Path) -> None:
    env = {**os.environ, "DEPLOY_DATABASE_URL": private_postgres.dsn, "DEPLOY_MIGRATIONS": str(_dir(tmp_path))}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "deploy.cli", "db", *args, "--json"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert json.loads(cli("migrate").stdout) == {"ok": True, "applied": ["0001_items"]}
    status = json.loads(cli("status").stdout)
    assert status["migrations"] == [{"version": "0001_items", "applied": True, "has_down": True}]
