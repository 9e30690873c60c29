from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.lint import lint
from deploy.settings import ROOT


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "0002_change.up.sql"
    path.write_text(body)
    return path


HEADER = "-- 0002: a change to demo.items\nSET lock_timeout = '2s';\n"


@pytest.mark.parametrize(("statement", "rule"), [
    ("ALTER TABLE demo.items DROP COLUMN points;", "ban-drop-column"),
    ("ALTER TABLE demo.items ADD COLUMN owner text NOT NULL;", "adding-required-field"),
    ("ALTER TABLE demo.items RENAME COLUMN name TO title;", "renaming-column"),
    ("ALTER TABLE demo.items ALTER COLUMN points TYPE bigint;", "changing-column-type"),
    ("DROP TABLE demo.items;", "ban-drop-table"),
])
def test_unsafe_change_blocks_with_rule_and_1_based_line(tmp_path: Path, statement: str, rule: str) -> None:
    path = _write(tmp_path, HEADER + "\n" + statement + "\n")
    blocks = [f for f in lint(files=[path]) if f.level == "block"]
    assert [(f.rule, f.line, f.file) for f in blocks] == [(rule, 4, str(path))]
    assert blocks[0].why


def test_nullable_add_passes(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + "ALTER TABLE demo.items ADD COLUMN IF NOT EXISTS note text;\n")
    assert [f for f in lint(files=[path]) if f.level == "block"] == []


def test_other_rules_only_warn(tmp_path: Path) -> None:
    path = _write(tmp_path, "CREATE INDEX items_name ON demo.items (name);\n")
    findings = lint(files=[path])
    assert {f.rule for f in findings} >= {"require-concurrent-index-creation"}
    assert {f.level for f in findings} == {"warn"}


def test_unparseable_sql_blocks(tmp_path: Path) -> None:
    path = _write(tmp_path, "SELECT 1;\nALTR TABLE demo.items;\n")
    assert {(f.rule, f.line, f.level) for f in lint(files=[path])} == {("syntax-error", 2, "block")}


def test_the_demo_migrations_pass() -> None:
    ups = sorted((ROOT / "examples" / "demo" / "migrations").glob("*.up.sql"))
    assert ups and [f for f in lint(files=ups) if f.level == "block"] == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.cli", "db", "lint", "--json", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_cli_exit_code_and_json(tmp_path: Path) -> None:
    bad = _write(tmp_path, "ALTER TABLE demo.items DROP COLUMN points;\n")
    good = tmp_path / "0003_note.up.sql"
    good.write_text("ALTER TABLE demo.items ADD COLUMN IF NOT EXISTS note text;\n")
    blocked, passed = _cli(str(bad)), _cli(str(good))
    assert blocked.returncode == 1, blocked.stderr
    report = json.loads(blocked.stdout)
    assert report["ok"] is False
    assert [(f["rule"], f["line"]) for f in report["findings"] if f["level"] == "block"] == [("ban-drop-column", 1)]
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert json.loads(passed.stdout)["ok"] is True
