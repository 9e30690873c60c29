from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import asyncpg
import pytest

from deploy import backup as backups
from deploy.settings import ROOT

pytestmark = pytest.mark.integration


async def _seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("""
            CREATE SCHEMA demo;
            CREATE TABLE demo.items (id serial PRIMARY KEY, name text NOT NULL, points integer NOT NULL DEFAULT 0);
            INSERT INTO demo.items (name, points) SELECT 'item ' || g, g % 100 FROM generate_series(1, 5000) g;
            CREATE TABLE public.events (id bigint PRIMARY KEY, body jsonb);
            INSERT INTO public.events SELECT g, jsonb_build_object('n', g) FROM generate_series(1, 1234) g;
            CREATE TABLE public.empty (id int);
        """)
    finally:
        await conn.close()


async def _counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("demo.items", "public.events",
                                                                              "public.empty")}
    finally:
        await conn.close()


async def _databases(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


async def test_backup_then_restore_into_a_scratch_db_gives_the_same_row_counts(private_postgres, tmp_path):
    dsn = private_postgres.dsn
    await _seed(dsn)
    item = await backups.backup(dsn=dsn, directory=tmp_path, keep=3)
    assert item.verified is True
    assert item.rows == {"demo.items": 5000, "public.events": 1234, "public.empty": 0}
    assert not {d for d in await _databases(dsn) if d.startswith("safeguard_verify_")}  # scratch dropped

    timings = await backups.restore(dsn=dsn, item=item, database="restored")
    assert set(timings) == {"restore_s", "compare_s"}
    restored = dsn.rsplit("/", 1)[0] + "/restored"
    assert await _counts(restored) == await _counts(dsn) == {k: v for k, v in item.rows.items()}


async def test_verify_catches_a_dump_that_does_not_restore_the_rows(private_postgres, tmp_path):
    dsn = private_postgres.dsn
    await _seed(dsn)
    item = await backups.backup(dsn=dsn, directory=tmp_path, keep=3, check=False)
    item.rows["demo.items"] += 1  # the manifest says one more row than the dump holds
    with pytest.raises(backups.BackupError, match="demo.items"):
        await backups.verify(dsn=dsn, item=item)
    assert json.loads(item.path.with_suffix(".json").read_text())["verified"] is False
    assert not {d for d in await _databases(dsn) if d.startswith("safeguard_verify_")}


async def test_retention_keeps_the_newest(private_postgres, tmp_path):
    dsn = private_postgres.dsn
    made = [await backups.backup(dsn=dsn, directory=tmp_path, keep=2, check=False) for _ in range(3)]
    kept = backups.list_backups(directory=tmp_path)
    assert [b.path for b in kept] == [made[2].path, made[1].path]
    assert not made[0].path.exists() and not made[0].path.with_suffix(".json").exists()


def test_cli_backup_list_restore_and_a_dead_database(private_postgres, tmp_path):
    env = {**os.environ, "DEPLOY_DATABASE_URL": private_postgres.dsn, "DEPLOY_BACKUP_DIR": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "deploy.cli", "backup", *args, "--json"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    made = cli("backup")
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)["backup"]
    assert report["verified"] is True and {"dump_s", "restore_s"} <= set(report["timings"])
    assert [b["path"] for b in json.loads(cli("list").stdout)["backups"]] == [report["path"]]
    restored = cli("restore", "--database", "copy")
    assert restored.returncode == 0 and json.loads(restored.stdout)["database"] == "copy"
    again = cli("restore", "--database", "copy")  # it exists: refused, left as it was
    assert again.returncode == 1 and json.loads(again.stdout)["ok"] is False
    with private_postgres.stopped():
        dead = cli("backup")
    assert dead.returncode == 1 and json.loads(dead.stdout)["ok"] is False
