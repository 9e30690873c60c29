"""docs/architecture.md names real files: every repository path it quotes in backticks exists, and every
topic of the contract appears in its topic table (a renamed module or a new topic makes this fail)."""

from __future__ import annotations

import re
from pathlib import Path

from shared.topics import TOPICS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
QUOTED_PATH = re.compile(r"`((?:services|shared|sdk|stack|tests|config|docs|deploy|cli|examples)/[\w./-]*)`")


def test_every_quoted_path_exists() -> None:
    paths = set(QUOTED_PATH.findall(DOC.read_text()))
    assert len(paths) > 20, "the pattern no longer finds the doc's paths"
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_topic_is_in_the_table() -> None:
    rows = {m.group(1) for m in re.finditer(r"^\| `([a-z.]+)`", DOC.read_text(), re.M)}
    assert rows == {t.name for t in TOPICS}
