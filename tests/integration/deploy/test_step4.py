"""The runbook's Step 4 exactly as written, run in a clone of this repository whose `origin` is a bare
repository: the release commit is reverted and pushed, and `npm run db:rollback` takes the database
back one migration (the demo's v2 `0002_items_badge` -> v1)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deploy import migrations
from deploy.rehearse import schema_sql
from deploy.settings import ROOT

pytestmark = pytest.mark.integration

STEP_4 = """# Git rollback
git revert HEAD --no-edit
git push origin main

# Database rollback
npm run db:rollback
"""


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60).stdout


def _app_repo(tmp_path: Path) -> tuple[Path, Path]:
    """origin.git (bare) and a clone of it with one release commit on top of this checkout's HEAD."""
    origin, app = tmp_path / "origin.git", tmp_path / "app"
    _git("clone", "-q", "--bare", "--no-local", str(ROOT), str(origin), cwd=tmp_path)
    _git("clone", "-q", str(origin), str(app), cwd=tmp_path)
    _git("checkout", "-q", "-B", "main", cwd=app)
    _git("push", "-q", "origin", "main", cwd=app)
    (app / ".venv").symlink_to(ROOT / ".venv")  # the clone runs with this checkout's virtualenv
    (app / "RELEASE").write_text("v2\n")
    _git("add", "RELEASE", cwd=app)
    _git("-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "-q", "-m", "release v2", cwd=app)
    _git("push", "-q", "origin", "main", cwd=app)
    return origin, app


async def test_step_4_verbatim_reverts_pushes_and_rolls_the_database_back(private_postgres, tmp_path: Path) -> None:
    dsn = private_postgres.dsn
    demo = ROOT / "examples" / "demo" / "migrations"
    assert await migrations.migrate(dsn=dsn, schema="demo", directory=demo) == ["0001_items", "0002_items_badge"]
    origin, app = _app_repo(tmp_path)

    env = {**os.environ, "DEPLOY_DATABASE_URL": dsn, "GIT_AUTHOR_NAME": "oncall", "GIT_AUTHOR_EMAIL": "oncall@example.com",
           "GIT_COMMITTER_NAME": "oncall", "GIT_COMMITTER_EMAIL": "oncall@example.com"}
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", STEP_4], cwd=app, env=env, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr

    assert _git("log", "-1", "--format=%s", "main", cwd=origin).strip() == 'Revert "release v2"'
    assert not (app / "RELEASE").exists()
    assert "rolled back: 0002_items_badge" in run.stdout
    assert "badge" not in await schema_sql(dsn=dsn)
    states = await migrations.status(dsn=dsn, schema="demo", directory=demo)
    assert [(s.version, s.applied) for s in states] == [("0001_items", True), ("0002_items_badge", False)]
