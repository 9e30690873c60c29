"""bench/report.py: rows with their baselines, pass / fail on the target, the merged report.md and report.png."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report
from bench.report import median_by


def test_rows_ratio_and_verdicts() -> None:
    report.begin("t")
    fast = report.record("sdk", 200.0, "evals/s", baseline="core", baseline_value=100.0, target=2.0)
    slow = report.record("sdk2", 150.0, "evals/s", baseline="core", baseline_value=100.0, target=2.0)
    limit = report.runbook_limit("switch", 0.05, limit_s=30, what="30 s")
    over = report.record("p99", 12.0, "ms", baseline="bare", baseline_value=1.0, lower_is_better=True, limit=10)
    bare = report.record("x", 1.0, "s")
    assert (fast.ratio, fast.passed, slow.passed) == (2.0, True, False)
    assert limit.passed is True and limit.ratio is not None and limit.ratio < 0.01
    assert over.passed is False and bare.passed is None and bare.ratio is None


def test_write_merges_benches_keeps_history_and_draws(tmp_path: Path) -> None:
    for value in (100.0, 120.0):
        report.begin("a")
        report.record("rate", value, "req/s", baseline="bare", baseline_value=200.0, target=0.5, spread=(90, 130))
        first = {"a": report.finish("a")}
        report.write(first, directory=tmp_path)
    report.begin("b")
    report.record("time", 3.0, "s", baseline="runbook", baseline_value=30.0, target=1.0, lower_is_better=True)
    report.write({"b": report.finish("b", error=None)}, directory=tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert sorted(data) == ["a", "b"]
    assert data["a"]["rows"][0]["history"] == [100.0, 120.0]
    md = (tmp_path / "report.md").read_text()
    assert "| rate | 120 | req/s | bare | 200 | 0.60 | >= 0.5x | pass | in run 90-130; last 2 runs 100-120 |" in md
    assert " cores (" in md and "load average" in md
    assert data["b"]["machine"]["python_loop_ms"] > 0 and "a 1M-step Python loop " in md
    png = (tmp_path / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_median_by_picks_one_measured_item() -> None:
    pairs = [(100.0, 60.0), (100.0, 40.0), (200.0, 100.0)]  # ratios 0.6, 0.4, 0.5
    assert median_by(pairs, lambda p: p[1] / p[0]) == (200.0, 100.0)
    assert median_by([3.0, 1.0, 2.0, 9.0], float) == 3.0  # the upper middle of an even count, never an average
    with pytest.raises(ValueError):
        median_by([], float)
