"""Lint migrations with squawk (the binary `squawk-cli` ships) and map its rules to the runbook's
"Database Migration Safety": what breaks the running version blocks, the rest warns."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["BLOCKING_RULES", "Finding", "LintError", "lint", "squawk_binary"]

# rule -> the runbook line it breaks ("Never drop existing columns", "Add new columns as nullable",
# "Always backward compatible": the previous version still runs against the new schema)
BLOCKING_RULES: dict[str, str] = {
    "ban-drop-column": "never drop existing columns",
    "ban-drop-table": "never drop a table the running version reads",
    "adding-required-field": "add new columns as nullable (or with a default)",
    "adding-not-nullable-field": "a NOT NULL on an existing column breaks the running version's writes",
    "renaming-column": "a rename is not backward compatible",
    "renaming-table": "a rename is not backward compatible",
    "changing-column-type": "a type change is not backward compatible (and rewrites the table)",
    "syntax-error": "squawk cannot parse it, so nothing about it is known to be safe",
}


class LintError(RuntimeError):
    """squawk could not run or answered something that is not its JSON report."""


@dataclass(frozen=True, kw_only=True)
class Finding:
    file: str
    line: int  # 1-based (squawk's are 0-based)
    rule: str
    level: Literal["block", "warn"]
    message: str
    why: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def squawk_binary() -> str:
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.is_file() else shutil.which("squawk")
    if not found:
        raise LintError("squawk not found: pip install squawk-cli")
    return found


def _finding(raw: dict[str, Any]) -> Finding:
    rule = str(raw.get("rule_name", "unknown"))
    return Finding(file=str(raw["file"]), line=int(raw["line"]) + 1, rule=rule,
                   level="block" if rule in BLOCKING_RULES else "warn",
                   message=str(raw.get("message", "")), why=BLOCKING_RULES.get(rule))


def lint(*, files: list[Path], pg_version: str = "15") -> list[Finding]:
    """Every squawk finding in `files` (up migrations: a down file drops by design), blocking first."""
    if not files:
        return []
    cmd = [squawk_binary(), "--reporter", "json", f"--pg-version={pg_version}", *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode not in (0, 1):  # 1: it found something
        raise LintError(f"squawk exited {proc.returncode}: {proc.stderr.strip()[:500]}")
    try:
        raw = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise LintError(f"squawk's report is not JSON: {exc}") from exc
    findings = [_finding(r) for r in raw]
    return sorted(findings, key=lambda f: (f.level != "block", f.file, f.line))
